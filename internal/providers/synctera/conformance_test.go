package synctera_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/providers/providertest"
	"github.com/northwind-data/etl/internal/providers/synctera"
)

func TestConformance(t *testing.T) { providertest.Run(t, synctera.Name) }
