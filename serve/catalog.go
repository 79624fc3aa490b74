package serve

import "strings"

// compatSQL creates the PostgreSQL compatibility objects in catalog.
func compatSQL(catalog string) []string {
	return nil
}

// rewrite returns the statement's text for DuckDB.
func rewrite(st statement, catalog string) string {
	var b strings.Builder
	for _, t := range st.toks {
		b.WriteString(t.text)
	}
	return b.String()
}
