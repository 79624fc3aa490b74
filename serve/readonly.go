package serve

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotReadOnly is what CheckReadOnly returns for a statement that is not a plain read.
var ErrNotReadOnly = errors.New("only a read (SELECT, WITH, VALUES, TABLE, FROM, EXPLAIN, DESCRIBE, SUMMARIZE, SHOW) may run here")

// CheckReadOnly applies the reader connections' statement classifier to one SQL text outside a
// session (the warehouse holder's control socket): exactly one statement, a read by its first
// keyword, calling none of the functions with global side effects. The caller still runs it in
// a READ ONLY transaction and checks DuckDB's statement type: this is the first of three gates.
func CheckReadOnly(sql string) error {
	sts := splitStatements(sql)
	if len(sts) != 1 {
		return fmt.Errorf("%w: want exactly one statement, got %d", ErrNotReadOnly, len(sts))
	}
	st := sts[0]
	kw := st.keyword(0)
	if w := st.words(); kw == "" && len(w) > 0 && w[0].text == "(" {
		kw = "select"
	}
	switch {
	case writeKeywords[kw]:
		return fmt.Errorf("%w: %s writes", ErrNotReadOnly, strings.ToUpper(kw))
	case privilegedKeywords[kw] != "":
		return fmt.Errorf("%w: %s is not allowed", ErrNotReadOnly, privilegedKeywords[kw])
	case !queryKeywords[kw]:
		return fmt.Errorf("%w: a statement starting with %q", ErrNotReadOnly, firstText(st))
	}
	if kw == "explain" && !explainsAQuery(st) {
		return fmt.Errorf("%w: EXPLAIN [ANALYZE] of anything but a SELECT, WITH, VALUES, TABLE or FROM query", ErrNotReadOnly)
	}
	for _, f := range st.calls() {
		if deniedFunctions[f] {
			return fmt.Errorf("%w: %s() is not allowed", ErrNotReadOnly, f)
		}
	}
	return nil
}

// explainsAQuery tells whether an EXPLAIN statement wraps a query. EXPLAIN ANALYZE runs the
// statement it wraps, and DuckDB types the whole as an EXPLAIN whatever that is (a SET of a
// global setting, a COPY TO a file, a CHECKPOINT): only a query may follow, and no option list.
func explainsAQuery(st statement) bool {
	i := 1
	if k := st.keyword(1); k == "analyze" || k == "analyse" {
		i = 2
	}
	switch st.keyword(i) {
	case "select", "with", "values", "table", "from":
		return true
	}
	return false
}
