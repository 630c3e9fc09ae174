// validate.go is the receiver's check of an event an author submits, in
// Comet's order: well-formed XML (no DOCTYPE), a VOEvent role on the root, a
// plain ivorn attribute, an IVOID with a local part, then the VOEvent 2.0
// XML Schema, hand-coded here because Go has no XSD engine.
//
// The schema is the one Comet ships (comet/schema/VOEvent-v2.0.xsd), applied
// as libxml2 applies it; testdata/vectors/validate/README.md states every rule.
// Invariants: validation only reads the tree (the same tree every XPath
// filter then reads), and the first failure found is the one reported, with
// its class first (see the class constants).
package main

import (
	"errors"
	"fmt"
	"strings"
)

// Rejection classes, in the order they are checked.
const (
	classXMLSyntax    = "xml-syntax"        // not well-formed XML
	classDoctype      = "doctype-or-entity" // a DOCTYPE declaration (our own rule)
	classNotVOEvent   = "not-voevent"       // root role missing or not a VOEvent role
	classMissingIvorn = "missing-ivorn"     // no plain ivorn attribute on the root
	classIVOID        = "ivoid"             // ivorn is not an IVOID with a local part
	classSchema       = "schema"            // the VOEvent 2.0 schema rejects it
)

// Namespaces the schema rules refer to.
const (
	voeventNS20 = "http://www.ivoa.net/xml/VOEvent/v2.0"
	voeventNS21 = "http://www.ivoa.net/xml/VOEvent/v2.1"
	xsNS        = "http://www.w3.org/2001/XMLSchema"
	xsiNS       = "http://www.w3.org/2001/XMLSchema-instance"
)

// rejection says why a submitted event is refused: class is one of the class
// constants, reason the detail a person can act on.
type rejection struct {
	class, reason string
}

func (r *rejection) Error() string { return r.class + ": " + r.reason }

// nakText is what follows "Event rejected: " in the nak's Result: Comet's
// own words where Comet naks (the IVOID failures), the verdict for the
// signature policy (it starts with "signature"), else the class and the
// detail.
func (r *rejection) nakText() string {
	if r.class == classIVOID || r.class == classSignature {
		return r.reason
	}
	return r.Error()
}

// checkSubmission runs the receiver's whole chain on raw. It returns the
// parsed document (nil if raw is not well-formed) for the filters to reuse,
// the root's ivorn whenever it could be read (from the raw bytes if parsing
// failed), and the first rejection, or nil if the event is valid.
// xmlErrorClass is the rejection class of a parse failure.
func xmlErrorClass(err error) string {
	var xe *xmlError
	if errors.As(err, &xe) && xe.doctype {
		return classDoctype
	}
	return classXMLSyntax
}

func checkSubmission(raw []byte) (*document, string, *rejection) {
	doc, err := parseDocument(raw)
	if err != nil {
		return nil, scanIvorn(raw), &rejection{xmlErrorClass(err), err.Error()}
	}
	root := doc.elem
	ivorn, hasIvorn := root.attr("ivorn")
	role, hasRole := root.attr("role")
	switch {
	case !hasRole:
		return doc, ivorn, &rejection{classNotVOEvent, fmt.Sprintf("root element %s has no role attribute", root.name())}
	case !contains(voeventRoles, role):
		return doc, ivorn, &rejection{classNotVOEvent, fmt.Sprintf("root element %s has role %q, not one of %s", root.name(), role, strings.Join(voeventRoles, ", "))}
	case !hasIvorn:
		return doc, "", &rejection{classMissingIvorn, fmt.Sprintf("root element %s has no ivorn attribute", root.name())}
	}
	_, _, local, err := parseIVOID(ivorn)
	switch {
	case err != nil:
		return doc, ivorn, &rejection{classIVOID, "Invalid IVOID: " + ivorn}
	case local == "":
		return doc, ivorn, &rejection{classIVOID, "No per-event local ID"}
	}
	if r := validateSchema(doc); r != nil {
		return doc, ivorn, r
	}
	return doc, ivorn, nil
}

// validateSchema applies the rules of the VOEvent 2.0 schema to doc.
func validateSchema(doc *document) *rejection {
	root := doc.elem
	if root.local != "VOEvent" || root.space != voeventNS20 {
		return schemaError(root, "", rootProblem(root))
	}
	return validateElement(root, &voeventDecl)
}

// rootProblem explains why the root element is not {v2.0}VOEvent.
func rootProblem(root *node) string {
	switch {
	case root.space == voeventNS21 && root.local == "VOEvent":
		return "VOEvent 2.1 (namespace " + voeventNS21 + ") is not accepted: like Comet's, this receiver validates against the VOEvent 2.0 schema only; publish it as version 2.0 in namespace " + voeventNS20
	case root.space == "":
		return fmt.Sprintf("root element %s is in no namespace, want VOEvent in namespace %s (VOEvent 1.1 and un-namespaced events are not accepted)", root.name(), voeventNS20)
	case root.local == "VOEvent":
		return fmt.Sprintf("root element is in namespace %q, want %s", root.space, voeventNS20)
	}
	return fmt.Sprintf("root element is {%s}%s, want VOEvent in namespace %s", root.space, root.local, voeventNS20)
}

// content is how an element's children are constrained.
type content uint8

const (
	contentAll       content = iota // each child at most once (or exactly once if required), any order
	contentChoice                   // any number of the children in any order (atLeastOne: not none)
	contentCitations                // one or more EventIVORN, then at most one Description
	contentEmpty                    // no children and no text at all
	contentSimple                   // text only, of type text
)

// elemDecl is the declared type of an element.
type elemDecl struct {
	typeNS, typeName string // the type's name, for xsi:type; "" if anonymous
	content          content
	text             valueType // for contentSimple
	children         []childDecl
	atLeastOne       bool
	attrs            []attrDecl
}

type childDecl struct {
	name     string
	decl     *elemDecl
	required bool
}

type attrDecl struct {
	name     string
	typ      valueType
	required bool
}

// Simple-content types shared by many elements.
var (
	stringDecl   = elemDecl{typeNS: xsNS, typeName: "string", content: contentSimple, text: typeString}
	floatDecl    = elemDecl{typeNS: xsNS, typeName: "float", content: contentSimple, text: typeFloat}
	dateTimeDecl = elemDecl{typeNS: xsNS, typeName: "dateTime", content: contentSimple, text: typeDateTime}
	anyURIDecl   = elemDecl{typeNS: xsNS, typeName: "anyURI", content: contentSimple, text: typeAnyURI}
)

// The complex types of VOEvent-v2.0.xsd, filled in by init because they
// refer to each other.
var (
	voeventDecl, whoDecl, authorDecl, whatDecl, paramDecl, groupDecl, tableDecl,
	fieldDecl, dataDecl, trDecl, whereWhenDecl, obsDataLocationDecl,
	observatoryLocationDecl, observationLocationDecl, astroCoordSystemDecl,
	astroCoordsDecl, timeDecl, timeInstantDecl, position2DDecl, position3DDecl,
	value2Decl, value3Decl, howDecl, whyDecl, inferenceDecl, citationsDecl,
	eventIVORNDecl, referenceDecl elemDecl
)

func init() {
	opt := func(name string, d *elemDecl) childDecl { return childDecl{name, d, false} }
	req := func(name string, d *elemDecl) childDecl { return childDecl{name, d, true} }
	str := func(name string) attrDecl { return attrDecl{name, typeString, false} }
	desc, ref := opt("Description", &stringDecl), opt("Reference", &referenceDecl)
	named := func(name string, c content, children []childDecl, attrs ...attrDecl) elemDecl {
		return elemDecl{typeNS: voeventNS20, typeName: name, content: c, children: children, attrs: attrs}
	}

	voeventDecl = elemDecl{content: contentAll, children: []childDecl{
		opt("Who", &whoDecl), opt("What", &whatDecl), opt("WhereWhen", &whereWhenDecl),
		opt("How", &howDecl), opt("Why", &whyDecl), opt("Citations", &citationsDecl), desc, ref,
	}, attrs: []attrDecl{{"version", typeVersion, true}, {"ivorn", typeAnyURI, true}, {"role", typeRole, false}}}
	whoDecl = named("Who", contentAll, []childDecl{
		opt("AuthorIVORN", &anyURIDecl), opt("Date", &dateTimeDecl), desc, ref, opt("Author", &authorDecl),
	})
	authorDecl = elemDecl{content: contentChoice, atLeastOne: true, children: []childDecl{
		opt("title", &stringDecl), opt("shortName", &stringDecl), opt("logoURL", &anyURIDecl),
		opt("contactName", &stringDecl), opt("contactEmail", &stringDecl), opt("contactPhone", &stringDecl),
		opt("contributor", &stringDecl),
	}}
	whatDecl = named("What", contentChoice, []childDecl{
		opt("Param", &paramDecl), opt("Group", &groupDecl), opt("Table", &tableDecl), desc, ref,
	})
	paramDecl = named("Param", contentChoice, []childDecl{desc, ref, opt("Value", &stringDecl)},
		str("name"), str("ucd"), str("value"), str("unit"), attrDecl{"dataType", typeDataType, false}, str("utype"))
	groupDecl = named("Group", contentChoice, []childDecl{opt("Param", &paramDecl), desc, ref}, str("name"), str("type"))
	tableDecl = named("Table", contentChoice, []childDecl{desc, ref, opt("Param", &paramDecl), opt("Field", &fieldDecl), opt("Data", &dataDecl)},
		str("name"), str("type"))
	fieldDecl = named("Field", contentChoice, []childDecl{desc, ref},
		str("name"), str("ucd"), str("unit"), attrDecl{"dataType", typeDataType, false}, str("utype"))
	dataDecl = named("Data", contentChoice, []childDecl{opt("TR", &trDecl)})
	dataDecl.atLeastOne = true
	trDecl = named("TR", contentChoice, []childDecl{opt("TD", &stringDecl)})
	trDecl.atLeastOne = true
	whereWhenDecl = named("WhereWhen", contentChoice, []childDecl{opt("ObsDataLocation", &obsDataLocationDecl), desc, ref},
		attrDecl{"id", typeID, false})
	obsDataLocationDecl = named("ObsDataLocation", contentAll, []childDecl{
		req("ObservatoryLocation", &observatoryLocationDecl), req("ObservationLocation", &observationLocationDecl),
	})
	observatoryLocationDecl = named("ObservatoryLocation", contentAll, []childDecl{
		opt("AstroCoordSystem", &astroCoordSystemDecl), opt("AstroCoords", &astroCoordsDecl),
	}, str("id"))
	observationLocationDecl = named("ObservationLocation", contentAll, []childDecl{
		req("AstroCoordSystem", &astroCoordSystemDecl), req("AstroCoords", &astroCoordsDecl),
	})
	astroCoordSystemDecl = named("AstroCoordSystem", contentEmpty, nil, attrDecl{"id", typeCoordSystem, false})
	astroCoordsDecl = named("AstroCoords", contentAll, []childDecl{
		opt("Time", &timeDecl), opt("Position2D", &position2DDecl), opt("Position3D", &position3DDecl),
	}, attrDecl{"coord_system_id", typeCoordSystem, false})
	timeDecl = named("Time", contentChoice, []childDecl{opt("TimeInstant", &timeInstantDecl), opt("Error", &floatDecl)}, str("unit"))
	timeInstantDecl = named("TimeInstant", contentChoice, []childDecl{
		opt("ISOTime", &stringDecl), opt("TimeOffset", &floatDecl), opt("TimeScale", &stringDecl),
	})
	position2DDecl = named("Position2D", contentAll, []childDecl{
		opt("Name1", &stringDecl), opt("Name2", &stringDecl), req("Value2", &value2Decl), req("Error2Radius", &floatDecl),
	}, str("unit"))
	position3DDecl = named("Position3D", contentAll, []childDecl{
		opt("Name1", &stringDecl), opt("Name2", &stringDecl), opt("Name3", &stringDecl), req("Value3", &value3Decl),
	}, str("unit"))
	value2Decl = named("Value2", contentAll, []childDecl{req("C1", &floatDecl), req("C2", &floatDecl)})
	value3Decl = named("Value3", contentAll, []childDecl{req("C1", &floatDecl), req("C2", &floatDecl), req("C3", &floatDecl)})
	howDecl = named("How", contentChoice, []childDecl{desc, ref})
	howDecl.atLeastOne = true
	whyDecl = named("Why", contentChoice, []childDecl{
		opt("Name", &stringDecl), opt("Concept", &stringDecl), opt("Inference", &inferenceDecl), desc, ref,
	}, attrDecl{"importance", typeFloat, false}, attrDecl{"expires", typeDateTime, false})
	whyDecl.atLeastOne = true
	inferenceDecl = named("Inference", contentChoice, []childDecl{
		opt("Name", &stringDecl), opt("Concept", &stringDecl), desc, ref,
	}, attrDecl{"probability", typeProbability, false}, str("relation"))
	inferenceDecl.atLeastOne = true
	citationsDecl = named("Citations", contentCitations, []childDecl{req("EventIVORN", &eventIVORNDecl), desc})
	eventIVORNDecl = named("EventIVORN", contentSimple, nil, attrDecl{"cite", typeCite, false})
	eventIVORNDecl.text = typeString
	referenceDecl = named("Reference", contentEmpty, nil,
		attrDecl{"uri", typeAnyURI, true}, str("type"), str("mimetype"), attrDecl{"meaning", typeAnyURI, false})
}

// validateElement checks n, already known to be declared as d, and its
// subtree: attributes first, then content.
func validateElement(n *node, d *elemDecl) *rejection {
	if r := validateAttrs(n, d); r != nil {
		return r
	}
	switch d.content {
	case contentSimple:
		for c := n.firstChild; c != nil; c = c.next {
			if c.kind == elementNode {
				return schemaError(c, "", fmt.Sprintf("element %s not allowed: %s holds text only", c.name(), n.local))
			}
		}
		if v := n.stringValue(); !d.text.valid(v) {
			return schemaError(n, "", fmt.Sprintf("%q is not %s", v, d.text))
		}
		return nil
	case contentEmpty:
		for c := n.firstChild; c != nil; c = c.next {
			switch c.kind {
			case elementNode:
				return schemaError(c, "", fmt.Sprintf("element %s not allowed: %s must be empty", c.name(), n.local))
			case textNode:
				return schemaError(n, "", fmt.Sprintf("text %q not allowed: %s must be empty, not even white space", c.data, n.local))
			}
		}
		return nil
	}
	// Element-only content.
	var counts [8]uint8
	elements := 0
	citationsSeenDescription := false
	for c := n.firstChild; c != nil; c = c.next {
		switch c.kind {
		case textNode:
			if !isAllXMLSpace(c.data) {
				return schemaError(n, "", fmt.Sprintf("text %q not allowed between the children of %s", c.data, n.local))
			}
			continue
		case elementNode:
		default:
			continue
		}
		elements++
		i := d.child(c)
		if i < 0 {
			return schemaError(c, "", unexpectedChild(c, n))
		}
		switch d.content {
		case contentAll:
			if counts[i] > 0 {
				return schemaError(c, "", fmt.Sprintf("%s appears more than once in %s", c.local, n.local))
			}
		case contentCitations:
			if i == 0 && citationsSeenDescription {
				return schemaError(c, "", "EventIVORN not allowed after Description in Citations")
			}
			if i == 1 {
				if counts[0] == 0 {
					return schemaError(c, "", "Citations must start with an EventIVORN")
				}
				if citationsSeenDescription {
					return schemaError(c, "", "Description appears more than once in Citations")
				}
				citationsSeenDescription = true
			}
		}
		if counts[i] < 255 {
			counts[i]++
		}
		if r := validateElement(c, d.children[i].decl); r != nil {
			return r
		}
	}
	for i, c := range d.children {
		if c.required && counts[i] == 0 {
			return schemaError(n, "", fmt.Sprintf("%s lacks its required %s", n.local, c.name))
		}
	}
	if d.atLeastOne && elements == 0 {
		names := make([]string, len(d.children))
		for i, c := range d.children {
			names[i] = c.name
		}
		return schemaError(n, "", fmt.Sprintf("%s needs at least one of %s", n.local, strings.Join(names, ", ")))
	}
	return nil
}

// child returns the index of c among d's children, or -1 if it is not one.
// Children are unqualified: an element in any namespace is never one.
func (d *elemDecl) child(c *node) int {
	if c.space != "" {
		return -1
	}
	for i := range d.children {
		if d.children[i].name == c.local {
			return i
		}
	}
	return -1
}

func unexpectedChild(c, parent *node) string {
	if c.space != "" {
		return fmt.Sprintf("element %s is in namespace %q; children of %s must be in no namespace", c.name(), c.space, parent.local)
	}
	return fmt.Sprintf("element %s not expected in %s", c.local, parent.local)
}

// validateAttrs checks n's attributes against d: no undeclared ones, values
// of their types, required ones present. Namespace declarations are not
// attributes and never appear here.
func validateAttrs(n *node, d *elemDecl) *rejection {
	var seen uint8 // bit i: d.attrs[i] present (at most 8 attributes declared)
	for a := n.firstAttr; a != nil; a = a.next {
		switch a.space {
		case "":
			i := -1
			for j := range d.attrs {
				if d.attrs[j].name == a.local {
					i = j
					break
				}
			}
			if i < 0 {
				return schemaError(n, a.local, fmt.Sprintf("attribute %s not allowed on %s", a.local, n.local))
			}
			seen |= 1 << i
			if t := d.attrs[i].typ; !t.valid(a.data) {
				return schemaError(n, a.local, fmt.Sprintf("%q is not %s", a.data, t))
			}
		case xsiNS:
			switch a.local {
			case "schemaLocation", "noNamespaceSchemaLocation":
			case "type":
				if !xsiTypeMatches(n, a.data, d) {
					return schemaError(n, a.name(), xsiTypeProblem(a.data, d))
				}
			default:
				return schemaError(n, a.name(), fmt.Sprintf("attribute xsi:%s not allowed (nothing in VOEvent is nillable)", a.local))
			}
		default:
			return schemaError(n, a.name(), fmt.Sprintf("attribute %s in namespace %q not allowed: VOEvent attributes are unqualified", a.name(), a.space))
		}
	}
	for i, at := range d.attrs {
		if at.required && seen&(1<<i) == 0 {
			return schemaError(n, "", fmt.Sprintf("%s lacks its required attribute %s", n.local, at.name))
		}
	}
	return nil
}

// xsiTypeMatches reports whether the QName v names, through the namespaces
// in scope at n, the declared type of n.
func xsiTypeMatches(n *node, v string, d *elemDecl) bool {
	if d.typeName == "" {
		return false
	}
	v = collapseSpace(v)
	prefix, local, ok := strings.Cut(v, ":")
	if !ok {
		prefix, local = "", v
	}
	uri, found := lookupNS(n, prefix)
	return found && uri == d.typeNS && local == d.typeName
}

func xsiTypeProblem(v string, d *elemDecl) string {
	if d.typeName == "" {
		return fmt.Sprintf("xsi:type %q not allowed: this element's type is anonymous", v)
	}
	return fmt.Sprintf("xsi:type %q does not name the element's type {%s}%s", v, d.typeNS, d.typeName)
}

// lookupNS resolves prefix among the declarations in scope at n.
func lookupNS(n *node, prefix string) (string, bool) {
	if prefix == "xml" {
		return xmlNamespaceURI, true
	}
	// At most maxXMLDepth ancestors, each searched in O(log) of its own
	// declarations (xname.lookup): a constant bound per call.
	for e := n; e != nil && e.kind == elementNode; e = e.parent {
		if d, ok := e.lookup(prefix); ok {
			return d.uri, d.uri != "" || prefix == ""
		}
	}
	return "", prefix == ""
}

// schemaError builds a schema rejection naming n's path (and attr, if
// given), the problem, and the line.
func schemaError(n *node, attr, msg string) *rejection {
	path := nodePath(n)
	if attr != "" {
		path += "/@" + attr
	}
	if n.line > 0 {
		return &rejection{classSchema, fmt.Sprintf("%s: %s (line %d)", path, msg, n.line)}
	}
	return &rejection{classSchema, path + ": " + msg}
}

// nodePath is n's element path, such as /VOEvent/What/Param[3]; the index
// appears only where the parent has more than one child of that name.
func nodePath(n *node) string {
	var parts []string
	for e := n; e != nil && e.kind == elementNode; e = e.parent {
		part := e.local
		if e.parent != nil && e.parent.kind == elementNode {
			idx, total := 0, 0
			for s := e.parent.firstChild; s != nil; s = s.next {
				if s.kind == elementNode && s.local == e.local && s.space == e.space {
					total++
					if s == e {
						idx = total
					}
				}
			}
			if total > 1 {
				part += fmt.Sprintf("[%d]", idx)
			}
		}
		parts = append(parts, part)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	return b.String()
}
