package clubready_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/providers/clubready"
	"github.com/northwind-data/etl/internal/providers/providertest"
)

func TestConformance(t *testing.T) { providertest.Run(t, clubready.Name) }
