package load

import "errors"

// SetBeforeCommit injects a hook between the writes and COMMIT (tests only).
func (d *DuckDB) SetBeforeCommit(f func() error) { d.beforeCommit = f }

// OpenErrorForTest exposes the open-error mapping.
var OpenErrorForTest = openError

// SetMigrateFailAt makes the tenant migration fail after statement n (tests only; -1: never).
func SetMigrateFailAt(n int) {
	migrateFailAt = nil
	if n >= 0 {
		migrateFailAt = func(i int) error {
			if i == n {
				return errors.New("injected failure")
			}
			return nil
		}
	}
}

// SetKeyFilterBytes makes every key filter built from now on that many bytes and never grown
// (0: the real sizing); tests only.
func SetKeyFilterBytes(n uint32) { testFilterBytes = n }
