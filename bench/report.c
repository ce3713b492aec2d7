/*
 * report.c - samples and medians, and the two outputs of a run: the table
 * on stdout and the JSON file.
 *
 * Both outputs are driven by one list of rows. A row is either a measured
 * figure or the ratio of two figures measured back to back in each
 * repetition; its value is the median of its samples (for a ratio, of the
 * per-repetition ratios), and it may carry a target. The top-level JSON keys
 * are the one_cpu placement's values, the placement the targets are judged in;
 * the split placement's values sit under "split", samples (median, min, max,
 * every value) under "samples", and each target with its verdict in both
 * placements under "targets". A figure that was not measured is null in JSON
 * and "-" in the table.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

void bench_fig_add(struct bench_fig *f, double v)
{
	if (f->n < BENCH_MAX_REPS)
		f->v[f->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_fig_median(const struct bench_fig *f)
{
	double s[BENCH_MAX_REPS];

	if (f->n == 0)
		return NAN;
	memcpy(s, f->v, (size_t)f->n * sizeof(double));
	qsort(s, (size_t)f->n, sizeof(double), cmp_double);
	return f->n % 2 ? s[f->n / 2] : (s[f->n / 2 - 1] + s[f->n / 2]) / 2;
}

double bench_fig_min(const struct bench_fig *f)
{
	double m = f->n ? f->v[0] : NAN;

	for (int i = 1; i < f->n; i++)
		m = f->v[i] < m ? f->v[i] : m;
	return m;
}

double bench_fig_max(const struct bench_fig *f)
{
	double m = f->n ? f->v[0] : NAN;

	for (int i = 1; i < f->n; i++)
		m = f->v[i] > m ? f->v[i] : m;
	return m;
}

enum ref_kind { REF_NONE, REF_SMALL, REF_LARGE };

/* A figure: a field of struct bench_small (per placement) or of struct
 * bench_large (one_cpu only). */
struct ref {
	enum ref_kind kind;
	size_t off;
};

#define SMALL(f)                                           \
	{                                                  \
		REF_SMALL, offsetof(struct bench_small, f) \
	}
#define LARGE(f)                                           \
	{                                                  \
		REF_LARGE, offsetof(struct bench_large, f) \
	}
#define NONE                \
	{                   \
		REF_NONE, 0 \
	}

struct row {
	const char *key;
	struct ref num, den; /* den REF_NONE: the figure itself */
	const char *op;      /* "<=", ">=", "baseline" or NULL */
	double target;
	int decimals;
};

static const struct row rows[] = {
        {"rtt_us", SMALL(rtt_us), NONE, "baseline", 0, 2},
        {"get_us", SMALL(get_us), NONE, NULL, 0, 2},
        {"get_vs_rtt", SMALL(get_us), SMALL(rtt_us), "<=", 1.3, 2},
        {"put_small_us", SMALL(put_small_us), NONE, NULL, 0, 2},
        {"put_small_vs_rtt", SMALL(put_small_us), SMALL(rtt_us), "<=", 1.5, 2},
        {"batch_get_objects_per_s", SMALL(batch_get_objects_per_s), NONE,
         ">=", 300000, 0},
        {"clients4_ops_per_s", SMALL(clients4_ops_per_s), NONE, NULL, 0, 0},
        {"get_64b_us", SMALL(get_64b_us), NONE, NULL, 0, 2},
        {"get_1g_us", SMALL(get_1g_us), NONE, NULL, 0, 2},
        {"get_1g_vs_64b", SMALL(get_1g_us), SMALL(get_64b_us), "<=", 1.5, 2},
        {"memcpy_gbps", LARGE(memcpy_gbps), NONE, "baseline", 0, 2},
        {"put_1g_gbps", LARGE(put_1g_gbps), NONE, NULL, 0, 2},
        {"put_1g_vs_memcpy", LARGE(put_1g_gbps), LARGE(memcpy_gbps), ">=", 0.8,
         2},
        {"put_1g_fresh_gbps", LARGE(put_1g_fresh_gbps), NONE, NULL, 0, 2},
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static const struct bench_fig *fig(const struct bench_results *r,
                                   struct ref ref, int pi)
{
	if (ref.kind == REF_SMALL && r->small[pi].measured)
		return (const void *)((const char *)&r->small[pi] + ref.off);
	if (ref.kind == REF_LARGE && pi == 0)
		return (const void *)((const char *)&r->large + ref.off);
	return NULL;
}

/*
 * The samples of a row into *out: the figure's own, or for a ratio one
 * ratio per repetition (the two figures of a repetition are measured back
 * to back, so a slow moment of the machine affects both). Returns false
 * when the row was not measured in placement pi.
 */
static bool samples(const struct bench_results *r, const struct row *w, int pi,
                    struct bench_fig *out)
{
	const struct bench_fig *n = fig(r, w->num, pi);
	const struct bench_fig *d = fig(r, w->den, pi);

	if (!n || n->n == 0)
		return false;
	if (w->den.kind == REF_NONE) {
		*out = *n;
		return true;
	}
	if (!d || d->n != n->n)
		return false;
	out->n = 0;
	for (int i = 0; i < n->n; i++)
		bench_fig_add(out, n->v[i] / d->v[i]);
	return true;
}

static double value(const struct bench_results *r, const struct row *w, int pi)
{
	struct bench_fig f;

	return samples(r, w, pi, &f) ? bench_fig_median(&f) : NAN;
}

static bool has_target(const struct row *w)
{
	return w->op && strcmp(w->op, "baseline") != 0;
}

/* "PASS", "MISS", or "-" when not measured. */
static const char *verdict(const struct row *w, double v)
{
	if (isnan(v))
		return "-";
	if (strcmp(w->op, "<=") == 0)
		return v <= w->target ? "PASS" : "MISS";
	return v >= w->target ? "PASS" : "MISS";
}

static void cell(char *buf, size_t size, double v, int decimals)
{
	if (isnan(v))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.*f", decimals, v);
}

static void print_placement(const struct bench_placement *p)
{
	if (p->daemon_cpu < 0)
		printf("  %-8s not measured (one CPU available)\n", p->name);
	else
		printf("  %-8s client on CPU %d, daemon on CPU %d\n", p->name,
		       p->client_cpu, p->daemon_cpu);
}

void bench_report_table(const struct bench_results *r)
{
	char a[32], b[32], range[48], tgt[32];

	printf("\nshoal-bench: medians of %d repetitions (1 GiB fresh puts: "
	       "%d); ratios are medians of per-repetition ratios; run took "
	       "%.0f s\n",
	       r->cfg->reps, r->cfg->large_reps, r->total_secs);
	print_placement(&r->place[0]);
	print_placement(&r->place[1]);
	printf("  kernel %s; THP %s; shmem THP %s\n", r->kernel, r->thp,
	       r->shmem_thp);
	printf("  load average at start: %s\n\n", r->loadavg);
	printf("%-24s %11s %11s  %-21s %-12s %s\n", "key", "one_cpu", "split",
	       "one_cpu min..max", "target", "one_cpu/split");
	for (size_t i = 0; i < NROWS; i++) {
		const struct row *w = &rows[i];
		struct bench_fig f;
		bool have = samples(r, w, 0, &f);
		double v0 = value(r, w, 0), v1 = value(r, w, 1);

		cell(a, sizeof(a), v0, w->decimals);
		cell(b, sizeof(b), v1, w->decimals);
		range[0] = '\0';
		if (have)
			snprintf(range, sizeof(range), "%.*f..%.*f",
			         w->decimals, bench_fig_min(&f), w->decimals,
			         bench_fig_max(&f));
		tgt[0] = '\0';
		if (w->op && !has_target(w))
			snprintf(tgt, sizeof(tgt), "baseline");
		else if (w->op)
			snprintf(tgt, sizeof(tgt), "%s %g", w->op, w->target);
		printf("%-24s %11s %11s  %-21s %-12s", w->key, a, b, range,
		       tgt);
		if (has_target(w))
			printf(" %s/%s", verdict(w, v0), verdict(w, v1));
		printf("\n");
	}
	if (r->large.fresh_misses || r->large.recycled_misses)
		printf("\nwarning: %d fresh put(s) landed in used memory, %d "
		       "recycled put(s) in fresh memory\n",
		       r->large.fresh_misses, r->large.recycled_misses);
}

static void json_num(FILE *f, double v, int decimals)
{
	if (isnan(v))
		fprintf(f, "null");
	else
		fprintf(f, "%.*f", decimals + 2, v);
}

static void json_values(FILE *f, const struct bench_results *r, int pi,
                        const char *indent)
{
	for (size_t i = 0; i < NROWS; i++) {
		fprintf(f, "%s\"%s\": ", indent, rows[i].key);
		json_num(f, value(r, &rows[i], pi), rows[i].decimals);
		fprintf(f, ",\n");
	}
}

static void json_samples(FILE *f, const struct bench_results *r, int pi)
{
	bool first = true;

	fprintf(f, "{");
	for (size_t i = 0; i < NROWS; i++) {
		struct bench_fig s;
		const struct bench_fig *g = &s;
		int d = rows[i].decimals;

		if (!samples(r, &rows[i], pi, &s))
			continue;
		fprintf(f, "%s\n    \"%s\": {\"median\": ", first ? "" : ",",
		        rows[i].key);
		json_num(f, bench_fig_median(g), d);
		fprintf(f, ", \"min\": ");
		json_num(f, bench_fig_min(g), d);
		fprintf(f, ", \"max\": ");
		json_num(f, bench_fig_max(g), d);
		fprintf(f, ", \"values\": [");
		for (int k = 0; k < g->n; k++) {
			fprintf(f, k ? ", " : "");
			json_num(f, g->v[k], d);
		}
		fprintf(f, "]}");
		first = false;
	}
	fprintf(f, "\n  }");
}

void bench_report_json(const struct bench_results *r, const char *path)
{
	FILE *f = fopen(path, "w");
	bool first = true;

	if (!f)
		bench_fail("cannot write %s", path);
	fprintf(f, "{\n  \"placement\": {\n");
	for (int i = 0; i < 2; i++)
		fprintf(f,
		        "    \"%s\": {\"client_cpu\": %d, \"daemon_cpu\": "
		        "%d}%s\n",
		        r->place[i].name, r->place[i].client_cpu,
		        r->place[i].daemon_cpu, i ? "" : ",");
	fprintf(f,
	        "  },\n  \"repetitions\": %d,\n  \"large_fresh_repetitions\": "
	        "%d,\n  \"ops_per_repetition\": %d,\n",
	        r->cfg->reps, r->cfg->large_reps, r->cfg->ops);
	fprintf(f,
	        "  \"machine\": {\"kernel\": \"%s\", \"thp\": \"%s\", "
	        "\"shmem_thp\": \"%s\", \"loadavg\": \"%s\"},\n",
	        r->kernel, r->thp, r->shmem_thp, r->loadavg);
	json_values(f, r, 0, "  ");
	fprintf(f, "  \"split\": {\n");
	json_values(f, r, 1, "    ");
	fprintf(f, "    \"placement\": \"split\"\n  },\n  \"targets\": {");
	for (size_t i = 0; i < NROWS; i++) {
		if (!has_target(&rows[i]))
			continue;
		fprintf(f,
		        "%s\n    \"%s\": {\"op\": \"%s\", \"value\": %g, "
		        "\"one_cpu\": \"%s\", \"split\": \"%s\"}",
		        first ? "" : ",", rows[i].key, rows[i].op,
		        rows[i].target,
		        verdict(&rows[i], value(r, &rows[i], 0)),
		        verdict(&rows[i], value(r, &rows[i], 1)));
		first = false;
	}
	fprintf(f, "\n  },\n  \"samples\": ");
	json_samples(f, r, 0);
	fprintf(f, ",\n  \"split_samples\": ");
	json_samples(f, r, 1);
	fprintf(f,
	        ",\n  \"checks\": {\"fresh_puts_in_used_memory\": %d, "
	        "\"recycled_puts_in_fresh_memory\": %d},\n",
	        r->large.fresh_misses, r->large.recycled_misses);
	fprintf(f, "  \"total_seconds\": %.1f\n}\n", r->total_secs);
	if (fclose(f) != 0)
		bench_fail("cannot write %s", path);
}
