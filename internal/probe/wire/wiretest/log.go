package wiretest

import (
	"io"
	"log/slog"

	"github.com/mxray/mxray/internal/probe/wire"
)

func slogTrace(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: wire.LevelTrace}))
}
