package main

import (
	"fmt"
	"image/color"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// transportColor keeps a transport's colour across both panels.
var transportColor = map[string]color.Color{
	"shm": color.RGBA{R: 30, G: 80, B: 180, A: 255},
	"tcp": color.RGBA{R: 200, G: 90, B: 20, A: 255},
}

// series is one line: a value per size of one transport.
func series(rows []*Row, transport string, get func(*Row) (float64, bool)) plotter.XYs {
	var pts plotter.XYs
	for _, r := range rows {
		if r.Transport != transport {
			continue
		}
		if v, ok := get(r); ok {
			pts = append(pts, plotter.XY{X: float64(r.Size), Y: v})
		}
	}
	return pts
}

// addLine adds pts as a line with points, solid or dashed, to p and its
// legend; no points, no line.
func addLine(p *plot.Plot, pts plotter.XYs, label string, c color.Color, dashed bool) error {
	if len(pts) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.LineStyle.Color, l.LineStyle.Width = c, vg.Points(1.5)
	if dashed {
		l.LineStyle.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	s.GlyphStyle.Color, s.GlyphStyle.Radius = c, vg.Points(2.5)
	s.GlyphStyle.Shape = draw.CircleGlyph{}
	if dashed {
		s.GlyphStyle.Shape = draw.TriangleGlyph{}
	}
	p.Add(l, s)
	p.Legend.Add(label, l, s)
	return nil
}

// sizeTicks marks the x axis at the sizes measured only.
type sizeTicks []int

func (t sizeTicks) Ticks(_, _ float64) []plot.Tick {
	ticks := make([]plot.Tick, len(t))
	for i, n := range t {
		ticks[i] = plot.Tick{Value: float64(n), Label: strconv.Itoa(n)}
	}
	return ticks
}

// writePNG draws the two panels side by side: p50 (solid) and p99 (dashed)
// latency in µs against the number of replicas, and commands/s against
// it, one colour per transport. Both on log scales: shm and tcp, and p50
// and p99, are orders of magnitude apart.
func writePNG(path string, cfg Config, rows []*Row) error {
	sizes := sizeTicks(cfg.Sizes)
	lo, hi := float64(cfg.Sizes[0])-0.5, float64(cfg.Sizes[len(cfg.Sizes)-1])+0.5
	lat := plot.New()
	lat.Title.Text = fmt.Sprintf("latency (main-st-lat, %d B, %d outstanding)", cfg.Payload, cfg.Outstanding)
	lat.X.Label.Text = "replicas"
	lat.Y.Label.Text = "µs (log)"
	lat.Y.Scale = plot.LogScale{}
	lat.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	tput := plot.New()
	tput.Title.Text = fmt.Sprintf("throughput (main-st, %d B, %d outstanding)", cfg.Payload, cfg.STOutstanding)
	tput.X.Label.Text = "replicas"
	tput.Y.Label.Text = "commands/s (log)"
	tput.Y.Scale = plot.LogScale{}
	tput.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	for _, p := range []*plot.Plot{lat, tput} {
		p.X.Tick.Marker = sizes
		p.X.Min, p.X.Max = lo, hi
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
	}
	drawn := 0
	for _, tr := range cfg.Transports {
		c := transportColor[tr]
		p50 := series(rows, tr, func(r *Row) (float64, bool) { return lat50(r) })
		p99 := series(rows, tr, func(r *Row) (float64, bool) {
			if r.Lat == nil {
				return 0, false
			}
			return float64(r.Lat.P99) / 1e3, true
		})
		ops := series(rows, tr, func(r *Row) (float64, bool) {
			if r.Tput == nil {
				return 0, false
			}
			return r.Tput.Rate, true
		})
		for _, l := range []struct {
			p      *plot.Plot
			pts    plotter.XYs
			label  string
			dashed bool
		}{
			{lat, p50, tr + " p50", false},
			{lat, p99, tr + " p99", true},
			{tput, ops, tr, false},
		} {
			if err := addLine(l.p, l.pts, l.label, c, l.dashed); err != nil {
				return fmt.Errorf("plot %s: %w", path, err)
			}
			drawn += len(l.pts)
		}
	}
	if drawn == 0 {
		return fmt.Errorf("plot %s: nothing to draw (every run failed)", path)
	}
	// Room above the highest point for the legend, and off the axis below
	// the lowest.
	lat.Y.Max *= 12
	tput.Y.Max *= 6
	lat.Y.Min /= 1.5
	tput.Y.Min /= 1.5

	const w, h = 12 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(20), PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canvases := plot.Align([][]*plot.Plot{{lat, tput}}, tiles, dc)
	lat.Draw(canvases[0][0])
	tput.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}

func lat50(r *Row) (float64, bool) {
	if r.Lat == nil {
		return 0, false
	}
	return float64(r.Lat.P50) / 1e3, true
}
