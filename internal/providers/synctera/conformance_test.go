package synctera_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/providers/synctera"
	"github.com/northwind-data/etl/internal/providers/providertest"
)

func TestConformance(t *testing.T) { providertest.Run(t, synctera.Name) }
