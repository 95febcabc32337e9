package tokenization_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/providers/providertest"
	"github.com/northwind-data/etl/internal/providers/tokenization"
)

func TestConformance(t *testing.T) { providertest.Run(t, tokenization.Name) }
