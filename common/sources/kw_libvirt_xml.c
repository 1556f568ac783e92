// SPDX-License-Identifier: GPL-2.0
/* kw_libvirt_xml.c - what the libvirt source reads from a domain's XML and
 * metadata (KW_LV_XML, KW_LV_METADATA), with libxml2 as collectd's virt
 * plugin does: interfaces with a target device (their MAC address and
 * 1-based number among them), and one value of a metadata element.
 *
 * The XML comes from libvirtd, but what is in it (interface names, metadata
 * text) is the domain owner's: documents are parsed without network access
 * or entity expansion, sizes are bounded, every value is copied bounded. */
#include "sources/kw_src_libvirt.h"
#include "util/kw_util.h"

#include <errno.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#define XML_MAX (4u << 20) /* a domain XML larger than this is not read */

static xmlDocPtr parse(const char *xml)
{
	size_t n = strnlen(xml, XML_MAX + 1);

	if (n > XML_MAX)
		return NULL;
	return xmlReadMemory(xml, (int)n, "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

/* An XPath over an XML document: the result (NULL when the document or
 * the expression does not parse); free all three with xpath_done. */
struct xpath {
	xmlDocPtr doc;
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr obj;
};

static xmlXPathObjectPtr xpath_eval(struct xpath *x, const char *xml, const char *expr)
{
	x->ctx = NULL;
	x->obj = NULL;
	if ((x->doc = parse(xml)) && (x->ctx = xmlXPathNewContext(x->doc)))
		x->obj = xmlXPathEvalExpression((const xmlChar *)expr, x->ctx);
	return x->obj;
}

static void xpath_done(struct xpath *x)
{
	if (x->obj)
		xmlXPathFreeObject(x->obj);
	if (x->ctx)
		xmlXPathFreeContext(x->ctx);
	if (x->doc)
		xmlFreeDoc(x->doc);
}

static void copy_prop(xmlNodePtr node, const char *prop, char *out, size_t len)
{
	xmlChar *v = xmlGetProp(node, (const xmlChar *)prop);

	if (v) {
		kw_strlcpy(out, (const char *)v, len);
		xmlFree(v);
	}
}

int kw_libvirt_xml_ifaces(const char *xml, struct kw_lv_iface *out, int max)
{
	struct xpath x;
	xmlXPathObjectPtr obj = xpath_eval(&x, xml, "/domain/devices/interface[target[@dev]]");
	int i, n = 0;

	if (!x.doc) {
		xpath_done(&x);
		return -EINVAL;
	}
	for (i = 0; obj && obj->type == XPATH_NODESET && obj->nodesetval && i < obj->nodesetval->nodeNr && n < max;
	     i++) {
		xmlNodePtr c;
		struct kw_lv_iface *f = &out[n];

		memset(f, 0, sizeof(*f));
		f->number = i + 1;
		for (c = obj->nodesetval->nodeTab[i]->children; c; c = c->next) {
			if (c->type != XML_ELEMENT_NODE)
				continue;
			if (xmlStrEqual(c->name, (const xmlChar *)"target"))
				copy_prop(c, "dev", f->name, sizeof(f->name));
			else if (xmlStrEqual(c->name, (const xmlChar *)"mac"))
				copy_prop(c, "address", f->mac, sizeof(f->mac));
		}
		if (f->name[0])
			n++;
	}
	xpath_done(&x);
	return n;
}

int kw_libvirt_meta_value(const char *meta, const char *xpath, char *out, size_t len)
{
	struct xpath x;
	xmlXPathObjectPtr obj = xpath_eval(&x, meta, xpath && xpath[0] ? xpath : KW_LV_META_XPATH);
	const char *v = NULL;
	int r = -ENOENT;

	out[0] = '\0';
	if (!x.doc || (x.ctx && !obj)) {
		xpath_done(&x);
		return -EINVAL; /* no XML, or not an XPath expression */
	}
	/* like collectd's virt: exactly one node, text or attribute */
	if (obj && obj->type == XPATH_NODESET && obj->nodesetval && obj->nodesetval->nodeNr == 1) {
		xmlNodePtr node = obj->nodesetval->nodeTab[0];

		if (node->type == XML_TEXT_NODE)
			v = (const char *)node->content;
		else if (node->type == XML_ATTRIBUTE_NODE && node->children)
			v = (const char *)node->children->content;
	}
	if (v) {
		kw_strlcpy(out, v, len);
		r = 0;
	}
	xpath_done(&x);
	return r;
}
