package datafeed_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/providers/datafeed"
	"github.com/northwind-data/etl/internal/providers/providertest"
)

func TestConformance(t *testing.T) { providertest.Run(t, datafeed.Name) }
