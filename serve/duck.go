package serve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	bindings "github.com/duckdb/duckdb-go-bindings"
)

// duckErr is an error reported by DuckDB, with its class (for the SQLSTATE) and message.
type duckErr struct {
	class bindings.ErrorType
	msg   string
}

func (e *duckErr) Error() string { return e.msg }

// readerConn is one DuckDB connection of a client session, used through DuckDB's C API so that
// results stream chunk by chunk (database/sql's driver materializes every result). Not safe for
// concurrent use except interrupt, which may be called from any goroutine.
type readerConn struct {
	conn bindings.Connection
	opts bindings.ArrowOptions

	mu     sync.Mutex // interrupt (any goroutine) against close
	closed bool
}

func connectReader(db bindings.Database) (*readerConn, error) {
	var c bindings.Connection
	if bindings.Connect(db, &c) == bindings.StateError {
		return nil, errors.New("connecting to the warehouse")
	}
	r := &readerConn{conn: c}
	bindings.ConnectionGetArrowOptions(c, &r.opts)
	return r, nil
}

func (r *readerConn) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	bindings.DestroyArrowOptions(&r.opts)
	bindings.Disconnect(&r.conn)
}

// interrupt cancels the running query, if any.
func (r *readerConn) interrupt() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		bindings.Interrupt(r.conn)
	}
}

// watch interrupts the connection when ctx ends, until the returned stop is called; stop
// waits for an interrupt under way, so none reaches a later statement.
func (r *readerConn) watch(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	after := context.AfterFunc(ctx, func() {
		defer close(done)
		r.interrupt()
	})
	return func() {
		if !after() {
			<-done
		}
	}
}

// exec runs a statement the server itself issues (BEGIN, ROLLBACK, setup) and discards its result.
func (r *readerConn) exec(q string) error {
	var res bindings.Result
	defer bindings.DestroyResult(&res)
	if bindings.Query(r.conn, q, &res) == bindings.StateError {
		return &duckErr{class: bindings.ResultErrorType(&res), msg: bindings.ResultError(&res)}
	}
	return nil
}

// column is one result column of a prepared statement.
type column struct {
	name string
	typ  duckType
}

// prepared is one prepared DuckDB statement. The caller closes it.
type prepared struct {
	ps     bindings.PreparedStatement
	kind   bindings.StatementType
	params []duckType
	cols   []column
}

// prepare prepares exactly one statement: DuckDB's multi-statement preparation would execute
// all but the last statement, so text that DuckDB splits into several is refused.
func (r *readerConn) prepare(q string) (*prepared, error) {
	var ext bindings.ExtractedStatements
	n := bindings.ExtractStatements(r.conn, q, &ext)
	defer bindings.DestroyExtracted(&ext)
	if n == 0 {
		msg := bindings.ExtractStatementsError(ext)
		if msg == "" {
			msg = "empty query"
		}
		return nil, &duckErr{class: bindings.ErrorTypeParser, msg: msg}
	}
	if n != 1 {
		return nil, &duckErr{class: bindings.ErrorTypeParser, msg: fmt.Sprintf("the statement expands to %d DuckDB statements; send one statement at a time", n)}
	}
	p := &prepared{}
	if bindings.PrepareExtractedStatement(r.conn, ext, 0, &p.ps) == bindings.StateError {
		msg := bindings.PrepareError(p.ps)
		bindings.DestroyPrepare(&p.ps)
		return nil, &duckErr{class: classOf(msg), msg: msg}
	}
	p.kind = bindings.PreparedStatementType(p.ps)
	for i := bindings.IdxT(1); i <= bindings.NParams(p.ps); i++ {
		lt := bindings.ParamLogicalType(p.ps, i)
		p.params = append(p.params, describeType(lt))
		bindings.DestroyLogicalType(&lt)
	}
	for i := bindings.IdxT(0); i < bindings.PreparedStatementColumnCount(p.ps); i++ {
		lt := bindings.PreparedStatementColumnLogicalType(p.ps, i)
		p.cols = append(p.cols, column{name: bindings.PreparedStatementColumnName(p.ps, i), typ: describeType(lt)})
		bindings.DestroyLogicalType(&lt)
	}
	return p, nil
}

func (p *prepared) close() { bindings.DestroyPrepare(&p.ps) }

// bind binds every parameter from its text form (nil is NULL); DuckDB casts each to the
// parameter's type. Binary blobs are bound as BLOB.
func (p *prepared) bind(args []param) error {
	if bindings.ClearBindings(p.ps) == bindings.StateError {
		return errors.New("clearing bindings")
	}
	for i, a := range args {
		idx := bindings.IdxT(i + 1)
		var st bindings.State
		switch {
		case a.null:
			st = bindings.BindNull(p.ps, idx)
		case a.blob:
			st = bindings.BindBlob(p.ps, idx, a.bytes)
		default:
			st = bindings.BindVarchar(p.ps, idx, string(a.bytes))
		}
		if st == bindings.StateError {
			return &duckErr{class: bindings.ErrorTypeConversion, msg: fmt.Sprintf("cannot bind parameter $%d", i+1)}
		}
	}
	return nil
}

// param is one bound parameter value.
type param struct {
	null  bool
	blob  bool
	bytes []byte
}

// cursor is an executing statement's streaming result: DuckDB computes the next chunk only
// when it is asked for, so a result of any size holds one chunk in memory. The caller closes it.
type cursor struct {
	r      *readerConn
	res    bindings.Result
	schema *arrow.Schema
	done   bool
}

// open executes p (bound) and returns its result as a cursor. ctx interrupts the execution.
func (r *readerConn) open(ctx context.Context, p *prepared) (*cursor, error) {
	stop := r.watch(ctx)
	defer stop()
	var pending bindings.PendingResult
	if bindings.PendingPreparedStreaming(p.ps, &pending) == bindings.StateError {
		msg := bindings.PendingError(pending)
		bindings.DestroyPending(&pending)
		return nil, &duckErr{class: classOf(msg), msg: msg}
	}
	c := &cursor{r: r}
	st := bindings.ExecutePending(pending, &c.res)
	bindings.DestroyPending(&pending)
	if st == bindings.StateError {
		err := r.resultErr(ctx, &c.res)
		bindings.DestroyResult(&c.res)
		return nil, err
	}
	n := int(bindings.ColumnCount(&c.res))
	if n == 0 {
		c.done = true
		return c, nil
	}
	types := make([]bindings.LogicalType, n)
	names := make([]string, n)
	for i := range types {
		types[i] = bindings.ColumnLogicalType(&c.res, bindings.IdxT(i))
		names[i] = fmt.Sprintf("c%d", i) // Arrow wants unique names; clients see the prepared names
	}
	schema, ed := bindings.NewArrowSchema(r.opts, types, names)
	for i := range types {
		bindings.DestroyLogicalType(&types[i])
	}
	if err := takeErrorData(ed); err != nil {
		c.close()
		return nil, err
	}
	c.schema = schema
	return c, nil
}

// next returns the next chunk as an Arrow record batch that the caller releases, or nil at
// the end of the result.
func (c *cursor) next(ctx context.Context) (arrow.RecordBatch, error) {
	if c.done {
		return nil, nil
	}
	stop := c.r.watch(ctx)
	defer stop()
	chunk := bindings.FetchChunk(c.res)
	if chunk.Ptr == nil {
		c.done = true
		if msg := bindings.ResultError(&c.res); msg != "" {
			return nil, c.r.resultErr(ctx, &c.res)
		}
		return nil, ctx.Err()
	}
	rec, ed := bindings.DataChunkToArrowArray(c.r.opts, c.schema, chunk)
	bindings.DestroyDataChunk(&chunk)
	if err := takeErrorData(ed); err != nil {
		return nil, err
	}
	return rec, nil
}

func (c *cursor) close() {
	if c != nil {
		bindings.DestroyResult(&c.res)
	}
}

func (r *readerConn) resultErr(ctx context.Context, res *bindings.Result) error {
	e := &duckErr{class: bindings.ResultErrorType(res), msg: bindings.ResultError(res)}
	if ctx.Err() != nil && e.class == bindings.ErrorTypeInterrupt {
		return fmt.Errorf("%w: %w", ctx.Err(), e)
	}
	return e
}

func takeErrorData(ed bindings.ErrorData) error {
	defer bindings.DestroyErrorData(&ed)
	if ed.Ptr == nil || !bindings.ErrorDataHasError(ed) {
		return nil
	}
	return &duckErr{class: bindings.ErrorDataErrorType(ed), msg: bindings.ErrorDataMessage(ed)}
}

// classOf recovers the error class from the "<Class> Error: " prefix of a prepare error, the
// only form the C API gives for them.
func classOf(msg string) bindings.ErrorType {
	prefix, _, ok := strings.Cut(msg, " Error: ")
	if !ok {
		return bindings.ErrorTypeInvalid
	}
	switch prefix {
	case "Parser":
		return bindings.ErrorTypeParser
	case "Catalog":
		return bindings.ErrorTypeCatalog
	case "Binder":
		return bindings.ErrorTypeBinder
	case "Permission":
		return bindings.ErrorTypePermission
	case "Conversion":
		return bindings.ErrorTypeConversion
	case "Invalid Input":
		return bindings.ErrorTypeInvalidInput
	case "TransactionContext":
		return bindings.ErrorTypeTransaction
	case "Not implemented":
		return bindings.ErrorTypeNotImplemented
	case "Out of Range":
		return bindings.ErrorTypeOutOfRange
	case "Interrupt":
		return bindings.ErrorTypeInterrupt
	}
	return bindings.ErrorTypeInvalid
}
