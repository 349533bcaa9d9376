/* policy.c -- the per-route scope decision, 403 challenge scopes and list-result filtering. */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mcpgate/mcp_policy.h"

int
mg_scope_set_add(mg_scope_set_t *set, const char *scope)
{
    if (scope == NULL || mg_scope_set_has(set, scope))
        return 0;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        const char **v = realloc(set->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        set->v = v;
        set->cap = cap;
    }
    set->v[set->n++] = scope;
    return 0;
}

bool
mg_scope_set_has(const mg_scope_set_t *set, const char *scope)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->v[i], scope) == 0)
            return true;
    return false;
}

void
mg_scope_set_clear(mg_scope_set_t *set)
{
    free(set->v);
    memset(set, 0, sizeof(*set));
}

/* The method a rule kind is about (NULL: the method itself is matched). */
static const char *
kind_method(mg_conf_rule_kind_t k)
{
    switch (k) {
    case MG_RULE_TOOL:
        return "tools/call";
    case MG_RULE_PROMPT:
        return "prompts/get";
    case MG_RULE_RESOURCE:
        return "resources/read";
    default:
        return NULL;
    }
}

static bool
rule_matches(const mg_conf_scope_rule_t *rule, const char *method, const char *target)
{
    const char *km = kind_method(rule->kind);

    if (method == NULL)
        return false;
    if (km == NULL)
        return fnmatch(rule->glob, method, 0) == 0;
    return strcmp(method, km) == 0 && fnmatch(rule->glob, target ? target : "", 0) == 0;
}

int
mg_policy_required(const mg_conf_route_t *route, const char *method, const char *target,
                   mg_scope_set_t *out)
{
    for (size_t i = 0; i < route->nrequire_scopes; i++)
        if (mg_scope_set_add(out, route->require_scopes[i]) != 0)
            return -1;
    for (size_t i = 0; i < route->nscope_rules; i++) {
        const mg_conf_scope_rule_t *rule = &route->scope_rules[i];
        if (!rule_matches(rule, method, target))
            continue;
        for (size_t j = 0; j < rule->nscopes; j++)
            if (mg_scope_set_add(out, rule->scopes[j]) != 0)
                return -1;
    }
    return 0;
}

static bool
granted_has(const char *const *granted, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (granted[i] != NULL && strcmp(granted[i], s) == 0)
            return true;
    return false;
}

/* Is every scope of <need> in <granted>? */
static bool
covers(const mg_scope_set_t *need, const char *const *granted, size_t ngranted)
{
    for (size_t i = 0; i < need->n; i++)
        if (!granted_has(granted, ngranted, need->v[i]))
            return false;
    return true;
}

bool
mg_policy_allows(const mg_conf_route_t *route, const char *method, const char *target,
                 const char *const *granted, size_t ngranted)
{
    mg_scope_set_t need = {0};
    bool ok = mg_policy_required(route, method, target, &need) == 0 &&
              covers(&need, granted, ngranted);

    mg_scope_set_clear(&need);
    return ok; /* fails closed on OOM */
}

bool
mg_policy_authorize(const mg_conf_route_t *route, const mg_rpc_body_t *body,
                    const char *const *granted, size_t ngranted, mg_scope_set_t *challenge)
{
    mg_scope_set_t need = {0};
    bool ok = true;

    for (size_t i = 0; i < body->n; i++) {
        const mg_rpc_msg_t *m = &body->msgs[i];
        /* the same function the list filter uses, message by message */
        if (!mg_policy_allows(route, m->method, m->target, granted, ngranted))
            ok = false;
        if (mg_policy_required(route, m->method, m->target, &need) != 0)
            ok = false;
    }
    if (!ok && challenge != NULL) {
        /* config order over everything the route knows: stable text (C-11) */
        const char *const *lists[3] = {(const char *const *)route->scopes_supported,
                                       (const char *const *)route->require_scopes, NULL};
        size_t nl[3] = {route->nscopes_supported, route->nrequire_scopes, 0};
        for (int l = 0; l < 2; l++)
            for (size_t i = 0; i < nl[l]; i++)
                if (mg_scope_set_has(&need, lists[l][i]) ||
                    granted_has(granted, ngranted, lists[l][i]))
                    mg_scope_set_add(challenge, lists[l][i]);
        for (size_t r = 0; r < route->nscope_rules; r++)
            for (size_t i = 0; i < route->scope_rules[r].nscopes; i++) {
                const char *s = route->scope_rules[r].scopes[i];
                if (mg_scope_set_has(&need, s) || granted_has(granted, ngranted, s))
                    mg_scope_set_add(challenge, s);
            }
    }
    mg_scope_set_clear(&need);
    return ok;
}

/* --- list filtering ------------------------------------------------------------ */

enum { LIST_TOOLS, LIST_PROMPTS, LIST_RESOURCES };

static const struct {
    const char *list_method, *call_method, *member, *key;
} lists[] = {
    {"tools/list", "tools/call", "tools", "name"},
    {"prompts/list", "prompts/get", "prompts", "name"},
    {"resources/list", "resources/read", "resources", "uri"},
};

struct mg_list_filter {
    const mg_conf_route_t *route;
    char **granted;
    size_t ngranted;
    struct {
        char *id; /* compact JSON */
        int kind;
        bool done;
    } *reqs;
    size_t nreqs;
};

void
mg_list_filter_free(mg_list_filter_t *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->ngranted; i++)
        free(f->granted[i]);
    free(f->granted);
    for (size_t i = 0; i < f->nreqs; i++)
        free(f->reqs[i].id);
    free(f->reqs);
    free(f);
}

mg_list_filter_t *
mg_list_filter_new(const mg_conf_route_t *route, const mg_rpc_body_t *body,
                   const char *const *granted, size_t ngranted, bool *oom)
{
    mg_list_filter_t *f = NULL;
    size_t n = 0;

    if (oom)
        *oom = false;
    for (size_t i = 0; i < body->n; i++)
        for (int k = 0; k < 3; k++)
            n += body->msgs[i].kind == MG_RPC_REQUEST && body->msgs[i].id != NULL &&
                 strcmp(body->msgs[i].method, lists[k].list_method) == 0;
    if (n == 0)
        return NULL;
    if ((f = calloc(1, sizeof(*f))) == NULL || (f->reqs = calloc(n, sizeof(*f->reqs))) == NULL ||
        (ngranted && (f->granted = calloc(ngranted, sizeof(char *))) == NULL))
        goto fail;
    f->route = route;
    for (size_t i = 0; i < ngranted; i++, f->ngranted++)
        if (granted[i] == NULL || (f->granted[i] = strdup(granted[i])) == NULL)
            goto fail;
    for (size_t i = 0; i < body->n; i++) {
        const mg_rpc_msg_t *m = &body->msgs[i];
        for (int k = 0; k < 3; k++) {
            if (m->kind != MG_RPC_REQUEST || m->id == NULL ||
                strcmp(m->method, lists[k].list_method) != 0)
                continue;
            f->reqs[f->nreqs].kind = k;
            if ((f->reqs[f->nreqs++].id = strdup(m->id)) == NULL)
                goto fail;
        }
    }
    return f;
fail:
    mg_list_filter_free(f);
    if (oom)
        *oom = true;
    return NULL;
}

bool
mg_list_filter_done(const mg_list_filter_t *f)
{
    for (size_t i = 0; f != NULL && i < f->nreqs; i++)
        if (!f->reqs[i].done)
            return false;
    return true;
}

/* Filter one response object in place; -1 not ours, else entries removed. */
static long
filter_response(mg_list_filter_t *f, json_t *resp)
{
    json_t *id, *result, *arr, *cs;
    char *idj;
    size_t r, removed = 0, i;

    if (!json_is_object(resp) || (id = json_object_get(resp, "id")) == NULL)
        return -1;
    if ((idj = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT)) == NULL)
        return -2;
    for (r = 0; r < f->nreqs; r++)
        if (!f->reqs[r].done && strcmp(f->reqs[r].id, idj) == 0)
            break;
    free(idj);
    if (r == f->nreqs)
        return -1;
    f->reqs[r].done = true;
    result = json_object_get(resp, "result");
    if (!json_is_object(result))
        return 0; /* an error response: nothing to filter */
    arr = json_object_get(result, lists[f->reqs[r].kind].member);
    if (!json_is_array(arr))
        return 0;
    for (i = 0; i < json_array_size(arr);) {
        json_t *e = json_array_get(arr, i);
        json_t *key = json_object_get(e, lists[f->reqs[r].kind].key);
        const char *target = json_is_string(key) ? json_string_value(key) : NULL;
        /* an entry without a usable key cannot be called: drop it (fail closed) */
        if (target == NULL ||
            !mg_policy_allows(f->route, lists[f->reqs[r].kind].call_method, target,
                              (const char *const *)f->granted, f->ngranted)) {
            json_array_remove(arr, i);
            removed++;
        } else {
            i++;
        }
    }
    cs = json_object_get(result, "cacheScope");
    if (removed > 0 && json_is_string(cs) && strcmp(json_string_value(cs), "public") == 0)
        json_object_set_new(result, "cacheScope", json_string("private"));
    return (long)removed;
}

int
mg_list_filter_json(mg_list_filter_t *f, const char *json, size_t len, char **out,
                    size_t *out_len, size_t *removed)
{
    json_error_t jerr;
    json_t *root;
    long total = 0;
    bool ours = false;
    int rc = 0;

    *out = NULL;
    if (removed)
        *removed = 0;
    if (f == NULL)
        return 0;
    /* duplicates allowed: jansson keeps the last one, as JavaScript clients do, so what
     * we filter is what the client reads */
    root = json_loadb(json, len, 0, &jerr);
    if (root == NULL) {
        /* Nothing to filter in an empty body or an SSE event without data (the
         * 2025-11-25 priming event). Anything else we cannot read may be the
         * list itself: relaying it unfiltered would fail open, so refuse. */
        for (size_t i = 0; i < len; i++)
            if (json[i] != ' ' && json[i] != '\t' && json[i] != '\r' && json[i] != '\n')
                return -1;
        return 0;
    }
    if (json_is_array(root)) {
        for (size_t i = 0; i < json_array_size(root); i++) {
            long n = filter_response(f, json_array_get(root, i));
            if (n == -2)
                rc = -1;
            if (n >= 0) {
                ours = true;
                total += n;
            }
        }
    } else {
        long n = filter_response(f, root);
        if (n == -2)
            rc = -1;
        if (n >= 0) {
            ours = true;
            total = n;
        }
    }
    if (rc == 0 && ours) {
        *out = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
        if (*out == NULL) {
            rc = -1;
        } else {
            *out_len = strlen(*out);
            rc = 1;
        }
    }
    if (removed)
        *removed = (size_t)total;
    json_decref(root);
    return rc;
}
