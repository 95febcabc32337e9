package extract

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/jackc/pgx/v5"
)

// CSVIdentity names a CSV export by what is read: the directory's
// absolute path with every symlink resolved, so two spellings of one
// export (relative, through a link, with ..) name it alike. It is stored
// in runs.source and shown to operators.
func CSVIdentity(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("source dir %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("source dir %s: %w", dir, err)
	}
	return "csv:" + real, nil
}

// PostgresIdentity names a Postgres source by what is read: the server
// (host and port), the database and the two queries (as a digest: they
// can be long), never the user, password or other URL options.
func PostgresIdentity(url, customers, cards string) (string, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "", fmt.Errorf("source.postgres.url is not valid") // the error may quote the password
	}
	h := sha256.Sum256([]byte(customers + "\x00" + cards))
	return fmt.Sprintf("postgres:%s:%d/%s queries=%s", cfg.Host, cfg.Port, cfg.Database, hex.EncodeToString(h[:6])), nil
}
