package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"

	"github.com/pktengine/pktengine/loadgen"
)

// Plot geometry: two panels side by side.
const (
	plotW, plotH  = 1000, 440
	panelW        = 400
	panelH        = 300
	panelTop      = 60
	leftX, rightX = 80, 580
)

// palette gives each responder a colour that stays the same across runs.
var palette = map[string]string{
	"kernel":       "#d62728",
	"kernel-batch": "#ff7f0e",
	"engine-v2":    "#1f77b4",
	"engine-v3":    "#2ca02c",
	"engine-xdp":   "#9467bd",
}

var spare = []string{"#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"}

func colour(name string, i int) string {
	if c, ok := palette[name]; ok {
		return c
	}
	return spare[i%len(spare)]
}

// svg accumulates an SVG document.
type svg struct{ b strings.Builder }

func (s *svg) f(format string, a ...any) { fmt.Fprintf(&s.b, format, a...); s.b.WriteByte('\n') }

func (s *svg) text(x, y float64, anchor, extra, t string) {
	s.f(`<text x="%.1f" y="%.1f" text-anchor="%s"%s>%s</text>`, x, y, anchor, extra, html.EscapeString(t))
}

// niceStep returns a step of 1, 2 or 5 times a power of ten that cuts
// [0, max] into at most about n intervals.
func niceStep(max float64, n int) float64 {
	if max <= 0 {
		return 1
	}
	raw := max / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// WriteSVG draws the report: on the left the rate delivered against the
// rate offered for every responder (every trial of the searches and the
// latency runs, one marker each, with each zero-loss rate marked on the
// axis), on the right the latency percentiles at each load, medians with
// whiskers from the lowest to the highest trial. It uses no fonts or scripts beyond
// what every browser has.
func (r *Report) WriteSVG(w io.Writer) error {
	c := r.Config
	return r.plot(w, fmt.Sprintf("pktengine bench: %d-byte UDP echo over veth, %s", c.Size, r.Date.Format("2006-01-02")),
		fmt.Sprintf("%s, %d x %s; generator CPU%d, responder CPU%d; %d trials of %v", r.Machine.Kernel, r.Machine.CPUs, r.Machine.CPU, c.GenCPU, c.ResponderCPU, c.Trials, c.TrialDuration),
		r.measured(), func(zeroLoss float64) string { return "zero-loss " + loadgen.FormatRate(zeroLoss) })
}

// plot writes the SVG of WriteSVG for the responders rs under a title and
// a subtitle; the legend names each with rate(its median zero-loss rate).
// The echo and the DNS reports share it: only r.Config.LatencyLoads is read.
func (r *Report) plot(w io.Writer, title, subtitle string, rs []*ResponderResult, rate func(float64) string) error {
	var s svg
	s.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`, plotW, plotH, plotW, plotH)
	s.f(`<rect width="100%%" height="100%%" fill="white"/>`)
	s.text(plotW/2, 22, "middle", ` font-size="15"`, title)
	s.text(plotW/2, 40, "middle", ` fill="#555"`, subtitle)
	r.throughputPanel(&s, rs)
	r.latencyPanel(&s, rs)

	// Legend under the panels, one column per responder.
	if len(rs) > 0 {
		colW := float64(plotW-2*40) / float64(len(rs))
		for i, rr := range rs {
			col := colour(rr.Name, i)
			x := 40 + float64(i)*colW
			s.f(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="3"/>`, x, plotH-22, x+20, plotH-22, col)
			label := rr.Name
			if rr.ZeroLoss.Median > 0 {
				label += ": " + rate(rr.ZeroLoss.Median)
			}
			s.text(x+26, plotH-18, "start", "", label)
		}
	}
	s.f(`</svg>`)
	_, err := io.WriteString(w, s.b.String())
	return err
}

func (r *Report) throughputPanel(s *svg, rs []*ResponderResult) {
	maxX, maxY := 0.0, 0.0
	for _, rr := range rs {
		for _, p := range rr.curve() {
			maxX = math.Max(maxX, p.Sent)
			maxY = math.Max(maxY, p.Delivered)
		}
	}
	maxY = math.Max(maxY, 1)
	maxX = math.Max(maxX, maxY)
	xs, ys := niceStep(maxX, 5), niceStep(maxY, 5)
	maxX, maxY = math.Ceil(maxX/xs)*xs, math.Ceil(maxY/ys)*ys
	px := func(v float64) float64 { return leftX + v/maxX*panelW }
	py := func(v float64) float64 { return panelTop + panelH - v/maxY*panelH }

	s.text(leftX+panelW/2, panelTop-8, "middle", ` font-weight="bold"`, "replies delivered vs frames offered")
	for v := 0.0; v <= maxX+xs/2; v += xs {
		s.f(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`, px(v), panelTop, px(v), panelTop+panelH)
		s.text(px(v), panelTop+panelH+16, "middle", "", loadgen.FormatSI(v))
	}
	for v := 0.0; v <= maxY+ys/2; v += ys {
		s.f(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`, leftX, py(v), leftX+panelW, py(v))
		s.text(leftX-6, py(v)+4, "end", "", loadgen.FormatSI(v))
	}
	s.f(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`, leftX, panelTop, panelW, panelH)
	s.text(leftX+panelW/2, panelTop+panelH+34, "middle", "", "offered (sent), frames/s")
	s.text(leftX-54, panelTop+panelH/2, "middle", fmt.Sprintf(` transform="rotate(-90 %d %d)"`, leftX-54, panelTop+panelH/2), "delivered, replies/s")
	// Where delivered equals offered: no loss.
	d := math.Min(maxX, maxY)
	s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="4 4"/>`, px(0), py(0), px(d), py(d))

	s.text(leftX+8, panelTop+16, "start", ` fill="#555"`, "filled: no loss; hollow: loss; triangle: zero-loss rate")
	for i, rr := range rs {
		col := colour(rr.Name, i)
		for _, p := range rr.curve() {
			fill := col
			if !p.Pass {
				fill = "white"
			}
			s.f(`<circle cx="%.1f" cy="%.1f" r="3" fill="%s" stroke="%s" stroke-width="1.5"/>`, px(p.Sent), py(p.Delivered), fill, col)
		}
		if z := rr.ZeroLoss.Median; z > 0 {
			// A tick on the axis at the zero-loss rate.
			s.f(`<path d="M %.1f %d l -5 9 l 10 0 z" fill="%s"><title>%s zero-loss %s</title></path>`, px(z), panelTop+panelH, col, html.EscapeString(rr.Name), loadgen.FormatRate(z))
		}
	}
}

func (r *Report) latencyPanel(s *svg, rs []*ResponderResult) {
	loads := r.Config.LatencyLoads
	s.text(rightX+panelW/2, panelTop-8, "middle", ` font-weight="bold"`, "round-trip latency: p50 (solid), p99 (dashed)")
	lo, hi := math.Inf(1), 0.0
	for _, rr := range rs {
		for _, l := range rr.Latency {
			if l.P50.Median > 0 {
				lo = math.Min(lo, l.P50.Median)
			}
			hi = math.Max(hi, l.P99.Median)
		}
	}
	if hi == 0 || len(loads) == 0 {
		s.text(rightX+panelW/2, panelTop+panelH/2, "middle", "", "no latency measured")
		return
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	py := func(ns float64) float64 {
		return panelTop + panelH - (math.Log10(math.Max(ns, 1))-dlo)/(dhi-dlo)*panelH
	}
	px := func(i int) float64 { return rightX + (float64(i)+0.5)/float64(len(loads))*panelW }
	for d := dlo; d <= dhi; d++ {
		y := py(math.Pow(10, d))
		s.f(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`, rightX, y, rightX+panelW, y)
		s.text(rightX-6, y+4, "end", "", loadgen.FormatDuration(time.Duration(math.Pow(10, d))))
	}
	for i, f := range loads {
		s.text(px(i), panelTop+panelH+16, "middle", "", fmt.Sprintf("%g%%", 100*f))
	}
	s.f(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`, rightX, panelTop, panelW, panelH)
	s.text(rightX+panelW/2, panelTop+panelH+34, "middle", "", "load, fraction of each responder's zero-loss rate")
	for i, rr := range rs {
		col := colour(rr.Name, i)
		for _, q := range []struct {
			get  func(*LatencyResult) Stat
			dash string
		}{
			{func(l *LatencyResult) Stat { return l.P50 }, ""},
			{func(l *LatencyResult) Stat { return l.P99 }, ` stroke-dasharray="6 4"`},
		} {
			var pts []string
			for j, f := range loads {
				l := rr.latencyAt(f)
				if l == nil || len(l.P50.Values) == 0 {
					continue
				}
				st := q.get(l)
				x, y := px(j), py(st.Median)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
				// Whisker from the lowest to the highest trial.
				s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`, x, py(st.Min), x, py(st.Max), col)
				s.f(`<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %g%%: %s</title></circle>`, x, y, col, html.EscapeString(rr.Name), 100*f, loadgen.FormatDuration(time.Duration(st.Median)))
			}
			if len(pts) > 1 {
				s.f(`<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`, col, q.dash, strings.Join(pts, " "))
			}
		}
	}
}
