package tokenization_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/providers/tokenization"
	"github.com/northwind-data/etl/internal/providers/providertest"
)

func TestConformance(t *testing.T) { providertest.Run(t, tokenization.Name) }
