package e2e

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"testing"
)

func t0ctx() context.Context { return context.Background() }

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func writeCSV(t *testing.T, path string, rows [][]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	_ = w.WriteAll(rows)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func col(t *testing.T, header []string, name string) int {
	t.Helper()
	for i, h := range header {
		if h == name {
			return i
		}
	}
	t.Fatalf("no column %s in %v", name, header)
	return -1
}

// editCSV sets one field of the row whose customer_id is id.
func editCSV(t *testing.T, path, id, field, value string) {
	t.Helper()
	rows := readCSV(t, path)
	k, f := col(t, rows[0], "customer_id"), col(t, rows[0], field)
	found := false
	for _, r := range rows[1:] {
		if r[k] == id {
			r[f], found = value, true
		}
	}
	if !found {
		t.Fatalf("no row for %s in %s", id, path)
	}
	writeCSV(t, path, rows)
}

// removeRows deletes a customer and its cards from the input.
func removeRows(t *testing.T, dir, id string) {
	t.Helper()
	for _, name := range []string{"customers.csv", "cards.csv"} {
		path := filepath.Join(dir, name)
		rows := readCSV(t, path)
		k := col(t, rows[0], "customer_id")
		out := rows[:1]
		for _, r := range rows[1:] {
			if r[k] != id {
				out = append(out, r)
			}
		}
		writeCSV(t, path, out)
	}
}
