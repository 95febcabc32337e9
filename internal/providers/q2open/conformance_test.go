package q2open_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/providers/providertest"
	"github.com/northwind-data/etl/internal/providers/q2open"
)

func TestConformance(t *testing.T) { providertest.Run(t, q2open.Name) }
