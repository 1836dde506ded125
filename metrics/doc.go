// Package metrics is the presentation of an engine's status: a Prometheus
// collector (with the Go runtime's and the process's, on a registry of its
// own, served by Handler) and the tables `pktengine stat` prints
// (WriteStatus).
//
// Both read snapshots (engine.Counters, engine.PortInfo, engine.Status)
// when asked, at each scrape or each stat request; nothing here runs on
// the engine's packet path.
package metrics
