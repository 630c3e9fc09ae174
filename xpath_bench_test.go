package main

import (
	"fmt"
	"testing"
)

// benchFilters are the realistic VOEvent filters: the Comet manual's
// examples and the voevent-filters category of the public vectors.
func benchFilters() []string {
	return []string{
		`//Param[@name="SC_Lat" and @value>600]`,
		`//Who[AuthorIVORN="ivo://lofar.transients/"]`,
		`/*[local-name()="VOEvent" and @role!="test"]`,
		`/*[local-name()="VOEvent" and @role="utility"]`,
		`//What/Param[@name="Packet_Type"]/@value = "61"`,
		`//Group[@name="Obs_Support_Info"]/Param[@name="Moon_Distance"]/@value > 20`,
		`//Param[@name="FAR"]/@value < 1e-7`,
		`//Param[@name="TrigID"]/@value > 1000000`,
		`//WhereWhen//Position2D/Value2/C1`,
		`//ISOTime > "2019"`,
		`//Citations/EventIVORN[@cite="retraction"]`,
		`contains(@ivorn, "SWIFT#BAT_GRB_Pos")`,
		`//Who/Author/shortName`,
		`//Table`,
		`not(//Param[@name="Packet_Type"]/@value = 83)`,
		`//What/Group/Group`,
	}
}

func BenchmarkXPathEval(b *testing.B) {
	doc, err := parseDocument(medianEvent(b))
	if err != nil {
		b.Fatal(err)
	}
	for i, expr := range benchFilters() {
		x, err := compileXPath(expr)
		if err != nil {
			b.Fatal(err)
		}
		// Sub-benchmarks are numbered: expressions contain '/', which the
		// -bench pattern treats as a level separator.
		b.Run(fmt.Sprintf("F%02d", i+1), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				x.matches(doc)
			}
		})
	}
}

func BenchmarkXPathCompile(b *testing.B) {
	for i, expr := range benchFilters()[:3] {
		b.Run(fmt.Sprintf("F%02d", i+1), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := compileXPath(expr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
