package faults

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writeCSV writes the timeline: second, acknowledged ops, unanswered
// attempts, p50/p99/p99.9 in µs.
func writeCSV(path string, secs []Second) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"second", "ops", "errors", "p50_us", "p99_us", "p999_us"})
	us := func(d int64) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) }
	for _, s := range secs {
		w.Write([]string{strconv.Itoa(s.At), strconv.Itoa(s.Ops), strconv.Itoa(s.Errors), us(int64(s.P50)), us(int64(s.P99)), us(int64(s.P999))})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("timeline %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("timeline %s: %w", path, err)
	}
	return nil
}

// Colours of the lines: one per series, the fault in red.
var (
	colourOps  = color.RGBA{R: 30, G: 80, B: 180, A: 255}
	colourP50  = color.RGBA{R: 30, G: 140, B: 60, A: 255}
	colourP99  = color.RGBA{R: 200, G: 120, B: 0, A: 255}
	colourMark = color.RGBA{R: 220, A: 255}
)

// writeTimelinePNG draws throughput (top) and p50/p99 latency (bottom, log
// scale) per slot of width, with the fault's start and end as vertical
// lines.
func writeTimelinePNG(path, title string, secs []Second, width time.Duration, marks []Mark) error {
	if len(secs) == 0 {
		return fmt.Errorf("plot %s: no seconds to draw", path)
	}
	top := plot.New()
	top.Title.Text = title
	top.Y.Label.Text = fmt.Sprintf("acknowledged ops/s (per %v)", width)
	top.Add(plotter.NewGrid())
	var ops, p50, p99 plotter.XYs
	w := width.Seconds()
	for _, s := range secs {
		x := (float64(s.At) + 0.5) * w
		ops = append(ops, plotter.XY{X: x, Y: float64(s.Ops) / w})
		if s.Ops > 0 {
			p50 = append(p50, plotter.XY{X: x, Y: math.Max(float64(s.P50)/1e3, 1)})
			p99 = append(p99, plotter.XY{X: x, Y: math.Max(float64(s.P99)/1e3, 1)})
		}
	}
	if err := addLine(top, ops, colourOps, "ops/s"); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	bottom := plot.New()
	bottom.X.Label.Text = "seconds since the run began"
	bottom.Y.Label.Text = "latency (µs)"
	bottom.Y.Scale = plot.LogScale{}
	bottom.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	bottom.Add(plotter.NewGrid())
	if len(p50) > 0 {
		if err := addLine(bottom, p50, colourP50, "p50"); err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		if err := addLine(bottom, p99, colourP99, "p99"); err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
	} else {
		// Nothing was answered: the log axis gets a range of its own
		// (its default, -1 to 1, has no logarithm).
		bottom.Y.Min, bottom.Y.Max = 1, 10
	}
	for _, p := range []*plot.Plot{top, bottom} {
		p.X.Min, p.X.Max = 0, float64(len(secs))*w
		markFault(p, marks)
		p.Legend.Top = true
	}
	return savePanels(path, top, bottom)
}

func addLine(p *plot.Plot, xys plotter.XYs, c color.Color, label string) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.LineStyle.Color, l.LineStyle.Width = c, vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(label, l)
	return nil
}

// markFault draws the marks as vertical lines over p's data range.
func markFault(p *plot.Plot, marks []Mark) {
	for i, m := range marks {
		x := float64(m.At) / 1e9
		lo, hi := p.Y.Min, p.Y.Max
		if lo <= 0 {
			lo = math.Max(lo, 1e-3)
		}
		if hi <= lo {
			hi = lo * 10
		}
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: lo}, {X: x, Y: hi}})
		if err != nil {
			continue
		}
		l.LineStyle.Color, l.LineStyle.Width = colourMark, vg.Points(1.2)
		if i > 0 {
			l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		if i == 0 || len(marks) < 3 {
			p.Legend.Add(m.Label, l)
		}
	}
}

// savePanels writes plots one above the other into one PNG.
func savePanels(path string, plots ...*plot.Plot) error {
	const w, h = 9 * vg.Inch, 3.2 * vg.Inch
	img := vgimg.New(w, h*vg.Length(len(plots)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Points(4), PadX: vg.Points(4)}
	grid := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		grid[i] = []*plot.Plot{p}
	}
	canvases := plot.Align(grid, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}

// writeLeasePNG draws granted and rejected p50 response times against the
// number of clients, one pair of lines per system.
func writeLeasePNG(path string, points []LeasePoint) error {
	p := plot.New()
	p.Title.Text = "lease requests (SET NX PX / etcd lease + txn): p50 response time"
	p.X.Label.Text = "clients (two per application)"
	p.Y.Label.Text = "response time (µs)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	var systems []string
	for _, pt := range points {
		if !slices.Contains(systems, pt.System) {
			systems = append(systems, pt.System)
		}
	}
	palette := []color.Color{colourOps, colourP99, colourP50, colourMark, color.Gray{Y: 80}}
	for si, s := range systems {
		var g, r plotter.XYs
		for _, pt := range points {
			if pt.System != s {
				continue
			}
			if pt.Granted > 0 {
				g = append(g, plotter.XY{X: float64(pt.Clients), Y: math.Max(float64(pt.GrantP50)/1e3, 1)})
			}
			if pt.Rejected > 0 {
				r = append(r, plotter.XY{X: float64(pt.Clients), Y: math.Max(float64(pt.RejectP50)/1e3, 1)})
			}
		}
		c := palette[si%len(palette)]
		for _, series := range []struct {
			xys    plotter.XYs
			label  string
			dashed bool
		}{{g, s + " granted", false}, {r, s + " rejected", true}} {
			if len(series.xys) == 0 {
				continue
			}
			l, pts, err := plotter.NewLinePoints(series.xys)
			if err != nil {
				return fmt.Errorf("plot %s: %w", path, err)
			}
			l.LineStyle.Color, pts.Color = c, c
			if series.dashed {
				l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			p.Add(l, pts)
			p.Legend.Add(series.label, l, pts)
		}
	}
	p.Legend.Top = true
	p.Legend.Left = true
	if err := p.Save(8*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

// writeSummaryPNG puts the run's scenarios side by side, one bar per
// system and environment: throughput before the fault (top) and the
// longest gap between acknowledged writes inside the fault window
// (bottom), so that systems run on the same faults can be
// compared at a glance.
func writeSummaryPNG(path string, outcomes []*Outcome) error {
	var scenarios, series []string
	for _, o := range outcomes {
		if o.Err != nil {
			continue
		}
		if sc := o.Scenario.String(); !slices.Contains(scenarios, sc) {
			scenarios = append(scenarios, sc)
		}
		if se := o.System + "/" + o.Env; !slices.Contains(series, se) {
			series = append(series, se)
		}
	}
	if len(scenarios) == 0 {
		return fmt.Errorf("plot %s: no scenario finished", path)
	}
	rate, gap := plot.New(), plot.New()
	rate.Title.Text = "scenarios side by side"
	rate.Y.Label.Text = "ops/s before the fault"
	gap.Y.Label.Text = "longest write gap in the window (ms)"
	palette := []color.Color{colourOps, colourP99, colourP50, colourMark, color.Gray{Y: 90}, color.RGBA{R: 120, G: 40, B: 160, A: 255}}
	width := vg.Points(max(2, 60/float64(len(series))))
	for si, se := range series {
		rs, gs := make(plotter.Values, len(scenarios)), make(plotter.Values, len(scenarios))
		for _, o := range outcomes {
			if o.Err != nil || o.System+"/"+o.Env != se {
				continue
			}
			i := slices.Index(scenarios, o.Scenario.String())
			rs[i] = o.BaseRate
			gs[i] = float64(o.WindowGap) / 1e6
		}
		for _, b := range []struct {
			p  *plot.Plot
			vs plotter.Values
		}{{rate, rs}, {gap, gs}} {
			bars, err := plotter.NewBarChart(b.vs, width)
			if err != nil {
				return fmt.Errorf("plot %s: %w", path, err)
			}
			bars.Color = palette[si%len(palette)]
			bars.LineStyle.Width = 0
			bars.Offset = width * vg.Length(float64(si)-float64(len(series)-1)/2)
			b.p.Add(bars)
			if b.p == rate {
				b.p.Legend.Add(se, bars)
			}
		}
	}
	for _, p := range []*plot.Plot{rate, gap} {
		p.NominalX(scenarios...)
		p.X.Tick.Label.Rotation = math.Pi / 4
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
		p.Add(plotter.NewGrid())
		p.X.Min, p.X.Max = -0.6, float64(len(scenarios))-0.4
	}
	rate.Legend.Top = true
	return savePanels(path, rate, gap)
}
