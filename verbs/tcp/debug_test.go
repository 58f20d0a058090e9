package tcp

import (
	"log/slog"
	"os"
)

// GOMU_TCP_DEBUG=1 go test shows the soft NIC's debug lines (refused
// connections, failed links).
func init() {
	if os.Getenv("GOMU_TCP_DEBUG") != "" {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
}
