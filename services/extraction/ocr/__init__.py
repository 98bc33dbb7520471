"""OCR of scanned pages, run by the text worker's pool child: `classify` (which pages need it), `reader`
(one page → text, confidence, word boxes), `preprocess`, `recognize` (Tesseract via tesserocr),
`tessdata` (where language models come from), `textlayer` (the PDF with text layer), `metrics`."""
