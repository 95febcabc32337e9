package ledger

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// DBError is a driver error whose message leaves out what can carry a
// secret or a record's value: the connection string (and its password),
// the user, and the value a data exception quotes. Unwrap returns the
// driver's error, so callers still branch on it with
// errors.As(err, &pgErr) (SQLSTATE in pgErr.Code) and errors.Is.
type DBError struct{ err error }

func (e *DBError) Unwrap() error { return e.err }

func (e *DBError) Error() string {
	var pe *pgconn.PgError
	if errors.As(e.err, &pe) {
		msg := pe.Message
		// Class 22 (data exception) messages quote the offending value,
		// e.g. `invalid input syntax for type uuid: "…"`.
		if strings.HasPrefix(pe.Code, "22") {
			if i := strings.Index(msg, ": "); i >= 0 {
				msg = msg[:i]
			}
		}
		return fmt.Sprintf("%s (SQLSTATE %s)", msg, pe.Code)
	}
	var pce *pgconn.ParseConfigError
	if errors.As(e.err, &pce) {
		// pgx redacts the password on a best-effort basis only; leave the
		// connection string out altogether and keep pgx's reason.
		s := pce.Error()
		if i := strings.LastIndex(s, "`: "); i >= 0 {
			s = s[i+len("`: "):]
		}
		if inner := pce.Unwrap(); inner != nil {
			s = strings.TrimSuffix(s, " ("+inner.Error()+")")
		}
		return "cannot parse: " + s
	}
	var ce *pgconn.ConnectError
	if errors.As(e.err, &ce) {
		// ConnectError names the user and database; the inner error says
		// what went wrong and where.
		return ce.Unwrap().Error()
	}
	return e.err.Error()
}

// redactErr wraps a driver error in a DBError; nil stays nil.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	return &DBError{err: err}
}
