package transform

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/schemas"
)

type mappingFile struct {
	Table string `json:"table"`
	Cases []struct {
		Name   string          `json:"name"`
		Record json.RawMessage `json:"record"`
		Column string          `json:"column"`
		Want   *string         `json:"want"`
		Error  string          `json:"error"`
	} `json:"cases"`
}

// cellString renders one cell for comparison (timestamps as RFC 3339 UTC).
func cellString(col arrow.Array, i int) *string {
	if col.IsNull(i) {
		return nil
	}
	var s string
	switch a := col.(type) {
	case *array.Timestamp:
		s = a.Value(i).ToTime(arrow.Microsecond).UTC().Format("2006-01-02T15:04:05.999999Z07:00")
	case *array.Decimal128:
		s = a.Value(i).ToString(10)
	case *array.List:
		vals := a.ListValues().(*array.String)
		start, end := a.ValueOffsets(i)
		var parts []string
		for k := start; k < end; k++ {
			parts = append(parts, vals.Value(int(k)))
		}
		s = fmt.Sprint(parts)
	default:
		s = a.ValueStr(i)
	}
	return &s
}

// TestTypeMappings runs every case in testdata/mappings: each record is converted alone and the
// named column compared, or the error checked. The allocator proves every buffer is released.
func TestTypeMappings(t *testing.T) {
	files, _ := filepath.Glob("testdata/mappings/*.json")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		var mf mappingFile
		if err := json.Unmarshal(raw, &mf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		table, err := schemas.Lookup(mf.Table)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range mf.Cases {
			t.Run(filepath.Base(f)+"/"+c.Name, func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				b := NewBatcher(table, mem, Meta{RunID: "r", SyncedAt: 1})
				defer b.Release()
				err := b.Add(c.Record)
				if c.Error != "" {
					if err == nil || !strings.Contains(err.Error(), c.Error) {
						t.Fatalf("error %v, want one containing %q", err, c.Error)
					}
					if b.Len() != 0 {
						t.Fatalf("a rejected record left %d rows in the batch", b.Len())
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				rec := b.Flush()
				defer rec.Release()
				idx := rec.Schema().FieldIndices(c.Column)
				if len(idx) != 1 {
					t.Fatalf("no column %s", c.Column)
				}
				got := cellString(rec.Column(idx[0]), 0)
				switch {
				case c.Want == nil && got != nil:
					t.Fatalf("got %q, want NULL", *got)
				case c.Want != nil && got == nil:
					t.Fatalf("got NULL, want %q", *c.Want)
				case c.Want != nil && *got != *c.Want:
					t.Fatalf("got %q, want %q", *got, *c.Want)
				}
			})
		}
	}
}

func TestFieldError_NamesStreamRecordFieldValue(t *testing.T) {
	table, _ := schemas.Lookup("leads")
	b := NewBatcher(table, memory.NewGoAllocator(), Meta{})
	defer b.Release()
	err := b.Add([]byte(`{"id":"lead-42","createdOn":"not a date"}`))
	var fe *FieldError
	if !asFieldError(err, &fe) || fe.Stream != "leads" || fe.RecordID != "lead-42" || fe.Field != "created_on" || !strings.Contains(fe.Value, "not a date") {
		t.Fatalf("error %v (%+v): want stream, record id, field and value", err, fe)
	}
}

func asFieldError(err error, fe **FieldError) bool {
	e, ok := err.(*FieldError)
	*fe = e
	return ok
}

func TestBatcher_ReusesBuildersAndRejectsDuplicateKeys(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	table, _ := schemas.Lookup("users")
	b := NewBatcher(table, mem, Meta{RunID: "run", SyncedAt: 5})
	defer b.Release()
	for batch := 0; batch < 3; batch++ {
		for i := 0; i < 100; i++ {
			if err := b.Add([]byte(fmt.Sprintf(`{"uuid":"u%d","email":"e%d","roles":["ROLE_USER"],"lastModified":%d}`, i, i, 1700000000000+i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Add([]byte(`{"uuid":"u7"}`)); err != ErrDuplicateKey {
			t.Fatalf("duplicate key in a batch: %v, want ErrDuplicateKey", err)
		}
		rec := b.Flush()
		if rec.NumRows() != 100 {
			t.Fatalf("batch %d: %d rows", batch, rec.NumRows())
		}
		run := rec.Column(rec.Schema().FieldIndices("_run_id")[0]).(*array.String)
		if run.Value(99) != "run" {
			t.Fatalf("_run_id = %q", run.Value(99))
		}
		rec.Release()
	}
	if b.Flush() != nil {
		t.Fatal("empty flush returned a batch")
	}
}
