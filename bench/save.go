package bench

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// Save writes the report into dir as NAME.json and NAME.svg, creating dir
// if need be, and returns the two paths. A name of "" means the report's
// date, "bench-20060102-150405".
func (r *Report) Save(dir, name string) (jsonPath, svgPath string, err error) {
	if name == "" {
		name = "bench-" + r.Date.UTC().Format("20060102-150405")
	}
	return save(dir, name, r.WriteJSON, r.WriteSVG)
}

// save writes a report into dir as NAME.json and NAME.svg with its two
// writers, creating dir if need be, and returns the two paths: the echo
// and the DNS reports' Save.
func save(dir, name string, writeJSON, writeSVG func(io.Writer) error) (jsonPath, svgPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, name+".json")
	svgPath = filepath.Join(dir, name+".svg")
	write := func(path string, f func(io.Writer) error) error {
		out, err := os.Create(path)
		if err != nil {
			return err
		}
		return errors.Join(f(out), out.Close())
	}
	err = errors.Join(write(jsonPath, writeJSON), write(svgPath, writeSVG))
	return jsonPath, svgPath, err
}
