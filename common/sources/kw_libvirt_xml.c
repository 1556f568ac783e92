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
	xmlDocPtr doc = parse(xml);
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr obj = NULL;
	int i, n = 0;

	if (!doc)
		return -EINVAL;
	if (!(ctx = xmlXPathNewContext(doc)))
		goto out;
	obj = xmlXPathEvalExpression((const xmlChar *)"/domain/devices/interface[target[@dev]]", ctx);
	if (!obj || obj->type != XPATH_NODESET || !obj->nodesetval)
		goto out;
	for (i = 0; i < obj->nodesetval->nodeNr && n < max; i++) {
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
out:
	if (obj)
		xmlXPathFreeObject(obj);
	if (ctx)
		xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return n;
}

int kw_libvirt_meta_value(const char *meta, const char *xpath, char *out, size_t len)
{
	xmlDocPtr doc = parse(meta);
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr obj = NULL;
	const char *v = NULL;
	int r = -ENOENT;

	out[0] = '\0';
	if (!doc)
		return -EINVAL;
	if (!(ctx = xmlXPathNewContext(doc)))
		goto out;
	obj = xmlXPathEvalExpression((const xmlChar *)(xpath && xpath[0] ? xpath : KW_LV_META_XPATH), ctx);
	if (!obj) {
		r = -EINVAL; /* not an XPath expression */
		goto out;
	}
	/* like collectd's virt: exactly one node, text or attribute */
	if (obj->type != XPATH_NODESET || !obj->nodesetval || obj->nodesetval->nodeNr != 1)
		goto out;
	if (obj->nodesetval->nodeTab[0]->type == XML_TEXT_NODE)
		v = (const char *)obj->nodesetval->nodeTab[0]->content;
	else if (obj->nodesetval->nodeTab[0]->type == XML_ATTRIBUTE_NODE &&
		 obj->nodesetval->nodeTab[0]->children)
		v = (const char *)obj->nodesetval->nodeTab[0]->children->content;
	if (v) {
		kw_strlcpy(out, v, len);
		r = 0;
	}
out:
	if (obj)
		xmlXPathFreeObject(obj);
	if (ctx)
		xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return r;
}
