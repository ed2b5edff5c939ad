package server

import (
	"os"
	"testing"

	"github.com/pennant/pennant/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
