package load

// SetBeforeCommit injects a hook between the writes and COMMIT (tests only).
func (d *DuckDB) SetBeforeCommit(f func() error) { d.beforeCommit = f }

// OpenErrorForTest exposes the open-error mapping.
var OpenErrorForTest = openError
