// Package pdftest writes small PDFs for tests and benchmarks: the objects given, numbered
// from 1 in order, with a cross-reference table and a trailer whose root is object 1.
package pdftest

import (
	"bytes"
	"fmt"
)

// Write returns a PDF 1.7 file of objs (each an object's body: a dictionary, or a stream
// with its dictionary), object i+1 being objs[i]; trailer adds entries to the trailer's
// dictionary after /Size and /Root (" /Info 6 0 R"), or is empty.
func Write(objs []string, trailer string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, trailer, xref)
	return b.Bytes()
}
