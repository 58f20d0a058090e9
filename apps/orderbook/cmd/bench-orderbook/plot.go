package main

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/trader"
)

// Mark is an instant drawn as a vertical line on the timeline: the fault
// (solid red), and what followed it (the continue, the restart: dashed).
type Mark struct {
	At    int64 // unix ns
	Label string
}

// maxPoints bounds the points drawn: beyond it the timeline is cut into
// that many slices of send time and each slice's slowest and fastest
// orders are drawn, so that no spike is lost to thinning.
const maxPoints = 60_000

// plotPoints are the (ms since the first mark, latency µs) points drawn.
func plotPoints(samples []trader.Sample, zero int64) plotter.XYs {
	xy := func(s trader.Sample) plotter.XY {
		return plotter.XY{X: float64(s.Send-zero) / 1e6, Y: math.Max(float64(s.Latency)/1e3, 0.01)}
	}
	if len(samples) <= maxPoints {
		pts := make(plotter.XYs, len(samples))
		for i, s := range samples {
			pts[i] = xy(s)
		}
		return pts
	}
	slices := maxPoints / 2
	pts := make(plotter.XYs, 0, maxPoints)
	for b := range slices {
		lo, hi := b*len(samples)/slices, (b+1)*len(samples)/slices
		if lo == hi {
			continue
		}
		mn, mx := lo, lo
		for i := lo; i < hi; i++ {
			if samples[i].Latency < samples[mn].Latency {
				mn = i
			}
			if samples[i].Latency > samples[mx].Latency {
				mx = i
			}
		}
		pts = append(pts, xy(samples[mn]))
		if mx != mn {
			pts = append(pts, xy(samples[mx]))
		}
	}
	return pts
}

// writePNG draws latency over send time, Mu's hiccup figure: one dot per
// order (µs, log scale) against ms since the fault, the fault a red line.
// samples must be in send order; marks[0] is the fault.
func writePNG(path, title string, samples []trader.Sample, marks []Mark) error {
	if len(samples) == 0 || len(marks) == 0 {
		return fmt.Errorf("plot %s: nothing to draw", path)
	}
	zero := marks[0].At
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "time since the fault (ms, by send time)"
	p.Y.Label.Text = "order latency (µs)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())

	pts := plotPoints(samples, zero)
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	sc.GlyphStyle.Shape = draw.CircleGlyph{}
	sc.GlyphStyle.Radius = vg.Points(1)
	sc.GlyphStyle.Color = color.RGBA{R: 30, G: 80, B: 180, A: 255}
	p.Add(sc)

	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, q := range pts {
		ymin, ymax = math.Min(ymin, q.Y), math.Max(ymax, q.Y)
	}
	ymin, ymax = ymin/1.5, ymax*1.5
	p.Y.Min, p.Y.Max = ymin, ymax
	for i, m := range marks {
		x := float64(m.At-zero) / 1e6
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: ymin}, {X: x, Y: ymax}})
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		l.LineStyle.Width = vg.Points(1.2)
		if i == 0 {
			l.LineStyle.Color = color.RGBA{R: 220, A: 255}
		} else {
			l.LineStyle.Color = color.Gray{Y: 110}
			l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(m.Label, l)
	}
	p.Legend.Top = true
	if err := p.Save(8*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
