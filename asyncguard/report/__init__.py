"""HTML reports: results in, self-contained pages out (inline CSS and SVG, no script, no network)."""
