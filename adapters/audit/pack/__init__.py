"""The audit pack: a portfolio's or a centre's coverage, sufficiency, decision chains and
sampling, with the checkpoint it was made against, as one self-contained HTML document and
a PDF. The desk's pages (adapters/http/ui) and the export bundle's summary render the same
sheets with the same templates."""
