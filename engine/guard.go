package engine

// The guards of the built-in services (Config.Guard): what keeps echo,
// daytime, qotd and chargen from being used against others, in loops,
// reflection or amplification attacks.

// guardState is Config.Guard made ready for the receive path.
type guardState struct {
	loop        [65536 / 64]uint64 // source ports never answered
	answerGroup bool
	anySource   bool
	sources     *sourceBuckets // nil: no per-source limit
	total       *bucket        // nil: no engine-wide cap
	totalRate   rate
	limitEcho   bool
}

func newGuardState(g *Guard) guardState {
	gs := guardState{answerGroup: g.AnswerGroup, anySource: g.AnySource, limitEcho: g.LimitEcho}
	gs.loop[0] |= 1 // port 0: nothing can be sent to it
	for _, p := range g.LoopPorts {
		gs.loop[p/64] |= 1 << (p % 64)
	}
	if g.SourceRate >= 0 {
		gs.sources = newSourceBuckets(g.SourceTable, newRate(g.SourceRate, g.SourceBurst))
	}
	if g.TotalRate >= 0 {
		gs.total, gs.totalRate = new(bucket), newRate(g.TotalRate, g.TotalBurst)
	}
	return gs
}

func (g *guardState) isLoopPort(p uint16) bool { return g.loop[p/64]&(1<<(p%64)) != 0 }

// allowed applies the guards to a request for a service, counting each
// refusal; limit applies the per-source bucket and the total cap.
func (g *guardState) allowed(r *Responder, d *Datagram, limit bool) bool {
	w, addrs := r.w, r.w.e.addrs
	var why counter
	switch {
	case g.isLoopPort(d.Src.Port()):
		why = cGuardLoop
	case !g.answerGroup && addrs.find(d.Dst.Addr()) == nil:
		why = cGuardNonUnicast
	case !g.anySource && !addrs.isHostSource(d.Src.Addr()):
		why = cGuardSource
	case limit && g.sources != nil && !g.sources.allow(d.Src.Addr(), r.in.now):
		why = cGuardRateLimited
	case limit && g.total != nil && !g.total.allow(r.in.now, &g.totalRate):
		// After the source's own bucket, so that a source over its
		// limit does not use up the engine's budget for everyone.
		why = cGuardTotalLimited
	default:
		return true
	}
	w.count[why]++
	w.portStats(r.port).pending.suppressed++
	return false
}
