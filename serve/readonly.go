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
	for _, f := range st.calls() {
		if deniedFunctions[f] {
			return fmt.Errorf("%w: %s() is not allowed", ErrNotReadOnly, f)
		}
	}
	return nil
}
