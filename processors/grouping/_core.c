/* Compiled core of grouping: the twins of the three loops a profile on real news showed to matter.
 *
 *   shingles   shingles.shingle_hashes_py   a hash per character of a long text
 *   postings   postings.Postings / Multimap  lookups, buffered additions and merges among millions of
 *              entries (at a million indexed articles every lookup misses the cache)
 *   evidence   evidence.measure_py           the signals of a new article against every candidate member
 *              and story (in numpy, hundreds of calls on arrays of a dozen values per article)
 *
 * The Python functions are the reference: each function here computes what its twin computes (the
 * same values; floating-point sums may differ in their last bits), which tests/processors/grouping/
 * test_native.py checks, and tests/processors/grouping/test_fuzz_native.py runs under AddressSanitizer
 * and UBSan. Everything reads arrays the index wrote and text strangers wrote: every length is
 * checked against the buffer it indexes before it is read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* ---- small helpers -------------------------------------------------------------------------------- */

/* Ascending sorts of hashes: insertion for a few, else least-significant-digit radix by bytes, skipping a byte
 * all values share (hashes are random: a comparison sort mispredicts a branch at every other step). */
#define SORT_SCRATCH 4096 /* values sorted with the static scratch; larger arrays get a scratch of their own */
#define DEFINE_SORT(name, type)                                                                            \
    static type name##_scratch[SORT_SCRATCH];                                                              \
    static void name(type *a, Py_ssize_t n) {                                                              \
        type *tmp = n <= 24 ? NULL : n <= SORT_SCRATCH ? name##_scratch : PyMem_Malloc(n * sizeof(type));   \
        if (!tmp) { /* a few values, or no memory for the scratch: insertion sort (slow but correct) */   \
            for (Py_ssize_t i = 1; i < n; i++) {                                                           \
                type v = a[i];                                                                             \
                Py_ssize_t j = i;                                                                          \
                for (; j > 0 && v < a[j - 1]; j--) a[j] = a[j - 1];                                        \
                a[j] = v;                                                                                  \
            }                                                                                              \
            return;                                                                                        \
        }                                                                                                  \
        type *from = a, *to = tmp;                                                                         \
        for (unsigned shift = 0; shift < 8 * sizeof(type); shift += 8) {                                   \
            Py_ssize_t count[257] = {0};                                                                   \
            for (Py_ssize_t i = 0; i < n; i++) count[((from[i] >> shift) & 0xFF) + 1]++;                   \
            if (count[((from[0] >> shift) & 0xFF) + 1] == n) continue; /* one value for this byte */       \
            for (int d = 0; d < 256; d++) count[d + 1] += count[d];                                        \
            for (Py_ssize_t i = 0; i < n; i++) to[count[(from[i] >> shift) & 0xFF]++] = from[i];           \
            type *swap = from; from = to; to = swap;                                                       \
        }                                                                                                  \
        if (from != a) memcpy(a, from, n * sizeof(type));                                                  \
        if (tmp != name##_scratch) PyMem_Free(tmp);                                                        \
    }

DEFINE_SORT(radix_u32, uint32_t)

/* Ascending sort of hashes spread evenly over [0, their largest): counted into at least as many buckets by their
 * top bits, then an insertion sort that moves each value within its bucket only (a radix sort of a few hundred
 * values spends more on its byte counts than on the values). Returns 0, with ``a`` as it was, when some bucket
 * holds more than SPREAD_CROWD values (not spread evenly: the caller sorts another way). */
#define SPREAD_MAX 4096
#define SPREAD_CROWD 16
static uint32_t spread_scratch[SPREAD_MAX];
static uint16_t spread_count[SPREAD_MAX + 1];
static int sort_spread(uint32_t *a, Py_ssize_t n) {
    if (n > SPREAD_MAX) return 0;
    uint32_t top = 0;
    for (Py_ssize_t i = 0; i < n; i++) top |= a[i];
    int bits = 0, lb = 0;
    while (bits < 32 && (top >> bits)) bits++; /* every value is below 2**bits */
    while (((Py_ssize_t)1 << lb) < n) lb++;    /* 2**lb buckets: at least one per value */
    int shift = bits > lb ? bits - lb : 0;
    Py_ssize_t buckets = (Py_ssize_t)1 << lb;
    memset(spread_count, 0, (buckets + 1) * sizeof spread_count[0]);
    for (Py_ssize_t i = 0; i < n; i++)
        if (++spread_count[(a[i] >> shift) + 1] > SPREAD_CROWD) return 0;
    for (Py_ssize_t b = 0; b < buckets; b++) spread_count[b + 1] += spread_count[b];
    for (Py_ssize_t i = 0; i < n; i++) spread_scratch[spread_count[a[i] >> shift]++] = a[i];
    for (Py_ssize_t i = 0; i < n; i++) { /* buckets are in order: a value moves past its bucket's others only */
        uint32_t v = spread_scratch[i];
        Py_ssize_t j = i;
        for (; j > 0 && v < a[j - 1]; j--) a[j] = a[j - 1];
        a[j] = v;
    }
    return 1;
}

/* Ascending sort of uint32 hashes: by buckets when they are spread evenly (hashes are), else by radix. */
static void sort_u32(uint32_t *a, Py_ssize_t n) {
    if (n <= 24 || !sort_spread(a, n)) radix_u32(a, n);
}

/* The ``k`` smallest of ``n`` keys, ascending, into ``out`` (room for ``k``); returns how many. The few kept are
 * a sorted run that a key enters only when it is smaller than the largest kept: for keys in random order that
 * is rare after the first ``k``. */
static Py_ssize_t smallest_u64(const uint64_t *keys, Py_ssize_t n, Py_ssize_t k, uint64_t *out) {
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t v = keys[i];
        if (m == k && (k == 0 || v >= out[k - 1])) continue;
        Py_ssize_t j = m < k ? m++ : k - 1;
        for (; j > 0 && v < out[j - 1]; j--) out[j] = out[j - 1];
        out[j] = v;
    }
    return m;
}

/* A read-only C-contiguous buffer of ``itemsize``-byte items; sets an exception naming ``what`` if it is not. */
static int open_items(PyObject *obj, Py_buffer *b, Py_ssize_t itemsize, const char *what) {
    if (PyObject_GetBuffer(obj, b, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (b->len % itemsize || (b->itemsize != itemsize && b->itemsize != 1)) {
        PyBuffer_Release(b);
        PyErr_Format(PyExc_TypeError, "%s: expected %zd-byte items", what, itemsize);
        return -1;
    }
    return 0;
}

/* ---- shared by the stages ---------------------------------------------------------------------- */

/* One indexed article's record: index.SLOT. */
typedef struct {
    uint32_t t;
    int32_t story, prev;
    uint32_t off32, off16;
    uint16_t outlet, size;
    uint8_t n_head, n_words, n_figures, n_bigrams, n_subject, n_sketch, flags, reach;
} Slot;
_Static_assert(sizeof(Slot) == 32, "index.SLOT is 32 bytes");
/* The PAIR features, in evidence.PAIR order. */
enum { P_BIAS, P_HEAD_COS, P_BIGRAM_COS, P_COVER_MIN, P_COVER_MAX, P_TEXT_COS, P_SHARED_TOP, P_COPY,
       P_FIGURES_AGREE, P_FIGURES_CONFLICT, P_SUBJECT_CONFLICT, P_LOG_HOURS, P_SAME_OUTLET, N_PAIR };

/* Every buffer a call opened, released together. */
typedef struct { Py_buffer b[24]; int n; } Buffers;

static void buffers_release(Buffers *bs) {
    for (int i = 0; i < bs->n; i++) PyBuffer_Release(&bs->b[i]);
    bs->n = 0;
}

/* Opens ``obj`` as items of ``itemsize`` bytes into the next slot of ``bs``; returns its data, or NULL with an
 * exception set. ``*count`` gets the number of items. */
static const void *buffers_take(Buffers *bs, PyObject *obj, Py_ssize_t itemsize, const char *what, Py_ssize_t *count) {
    if (bs->n >= (int)(sizeof bs->b / sizeof bs->b[0])) { PyErr_SetString(PyExc_RuntimeError, "too many buffers"); return NULL; }
    if (open_items(obj, &bs->b[bs->n], itemsize, what) < 0) return NULL;
    *count = bs->b[bs->n].len / itemsize;
    return bs->b[bs->n++].buf;
}

/* A hash with its window frequency, as one key that sorts by (frequency, hash) as signature._rarest ranks them:
 * the bits of a non-negative float order as the float does. */
static inline uint64_t rare_key(float df, uint32_t h) {
    uint32_t bits;
    if (!(df > 0.0f)) df = 0.0f; /* counts are never negative; -0 and NaN rank as 0 */
    memcpy(&bits, &df, sizeof bits);
    return (uint64_t)bits << 32 | h;
}

/* ---- words (features._forms, features._bigrams) ---------------------------------------------------- */

/* ---- CRC32 with zlib's polynomial and conventions (zlib.crc32 of the UTF-8 bytes) ---------------- */

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

/* Feeds the UTF-8 encoding of code point ``ch`` into a running (pre-inverted) CRC. */
static inline uint32_t crc_char(uint32_t crc, Py_UCS4 ch) {
    unsigned char b[4];
    int n;
    if (ch < 0x80) { b[0] = (unsigned char)ch; n = 1; }
    else if (ch < 0x800) { b[0] = 0xC0 | (ch >> 6); b[1] = 0x80 | (ch & 0x3F); n = 2; }
    else if (ch < 0x10000) { b[0] = 0xE0 | (ch >> 12); b[1] = 0x80 | ((ch >> 6) & 0x3F); b[2] = 0x80 | (ch & 0x3F); n = 3; }
    else { b[0] = 0xF0 | (ch >> 18); b[1] = 0x80 | ((ch >> 12) & 0x3F); b[2] = 0x80 | ((ch >> 6) & 0x3F);
           b[3] = 0x80 | (ch & 0x3F); n = 4; }
    for (int i = 0; i < n; i++) crc = crc_table[(crc ^ b[i]) & 0xFF] ^ (crc >> 8);
    return crc;
}

static uint32_t crc_chars(const Py_UCS4 *s, Py_ssize_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (Py_ssize_t i = 0; i < n; i++) crc = crc_char(crc, s[i]);
    return crc ^ 0xFFFFFFFFu;
}

/* ---- the word scan of text._WORD ------------------------------------------------------------
 * [가-힣]+ | [a-z]+\d*[a-z\d]* | \d+(?:[.,]\d+)*[가-힣a-z%㎞]{0,2}
 * The three alternatives start on disjoint characters and none can fail once started, so findall's
 * greedy first match is the simple maximal scan below; \d is Unicode Nd, as in re for str patterns. */

#define IS_HANGUL(c) ((c) >= 0xAC00 && (c) <= 0xD7A3)
#define IS_LOWER(c) ((c) >= 'a' && (c) <= 'z')
#define IS_DIGIT(c) (((c) >= '0' && (c) <= '9') || ((c) > 0x7F && Py_UNICODE_ISDECIMAL(c)))
#define IS_UNIT(c) (IS_HANGUL(c) || IS_LOWER(c) || (c) == '%' || (c) == 0x338E)

/* End of the word starting at ``i`` (== i when no word starts there). */
static Py_ssize_t word_end(int kind, const void *data, Py_ssize_t len, Py_ssize_t i) {
    Py_UCS4 c = PyUnicode_READ(kind, data, i);
    Py_ssize_t j = i;
    if (IS_HANGUL(c)) {
        while (j < len && IS_HANGUL(PyUnicode_READ(kind, data, j))) j++;
    } else if (IS_LOWER(c)) {
        while (j < len) {
            Py_UCS4 d = PyUnicode_READ(kind, data, j);
            if (!(IS_LOWER(d) || IS_DIGIT(d))) break;
            j++;
        }
    } else if (IS_DIGIT(c)) {
        while (j < len && IS_DIGIT(PyUnicode_READ(kind, data, j))) j++;
        while (j + 1 < len) {
            Py_UCS4 sep = PyUnicode_READ(kind, data, j);
            if (!((sep == '.' || sep == ',') && IS_DIGIT(PyUnicode_READ(kind, data, j + 1)))) break;
            j += 2;
            while (j < len && IS_DIGIT(PyUnicode_READ(kind, data, j))) j++;
        }
        for (int k = 0; k < 2 && j < len && IS_UNIT(PyUnicode_READ(kind, data, j)); k++) j++;
    }
    return j;
}

/* ---- particle stems (text._PARTICLES, longest first, ties in list order) -------------------- */

static const char *const PARTICLES_UTF8[] = {
    "에서는", "으로는", "에서도", "에게서", "이라는", "이라고", "에서", "으로", "에게", "까지", "부터", "처럼",
    "보다", "라는", "라고", "하고", "에는", "와", "과", "은", "는", "이", "가", "을", "를", "의", "에", "도", "로",
    "만", "서"};
#define N_PARTICLES ((int)(sizeof PARTICLES_UTF8 / sizeof PARTICLES_UTF8[0]))
static Py_UCS4 particles[N_PARTICLES][4];
static int particle_len[N_PARTICLES];
static int particle_order[N_PARTICLES]; /* indices, longest first (stable) */

static int particles_init(void) {
    int at = 0;
    for (int i = 0; i < N_PARTICLES; i++) {
        PyObject *s = PyUnicode_FromString(PARTICLES_UTF8[i]);
        if (!s) return -1;
        Py_ssize_t n = PyUnicode_GET_LENGTH(s);
        if (n > 3) { Py_DECREF(s); PyErr_SetString(PyExc_ValueError, "particle too long"); return -1; }
        for (Py_ssize_t k = 0; k < n; k++) particles[i][k] = PyUnicode_READ_CHAR(s, k);
        particle_len[i] = (int)n;
        Py_DECREF(s);
    }
    for (int n = 3; n >= 1; n--)
        for (int i = 0; i < N_PARTICLES; i++)
            if (particle_len[i] == n) particle_order[at++] = i;
    return 0;
}

/* Length of the stem of a Hangul word (n when it has no particle to strip). */
static Py_ssize_t stem_len(const Py_UCS4 *w, Py_ssize_t n) {
    if (n < 3 || !IS_HANGUL(w[0])) return n;
    Py_UCS4 last = w[n - 1];
    for (int o = 0; o < N_PARTICLES; o++) {
        int p = particle_order[o], pl = particle_len[p];
        if (particles[p][pl - 1] != last || n - pl < 2) continue; /* the last character first: it rarely matches */
        if (memcmp(w + n - pl, particles[p], pl * sizeof(Py_UCS4)) == 0) return n - pl;
    }
    return n;
}


/* A growing array of hashes. */
typedef struct { uint32_t *v; Py_ssize_t n, room; } Hashes;

static int hashes_add(Hashes *h, uint32_t v) {
    if (h->n == h->room) {
        Py_ssize_t room = h->room ? 2 * h->room : 64;
        uint32_t *grown = PyMem_Realloc(h->v, room * sizeof(uint32_t));
        if (!grown) { PyErr_NoMemory(); return -1; }
        h->v = grown;
        h->room = room;
    }
    h->v[h->n++] = v;
    return 0;
}

/* Sorts and keeps each value once. */
static void hashes_distinct(Hashes *h) {
    sort_u32(h->v, h->n);
    Py_ssize_t d = 0;
    for (Py_ssize_t i = 0; i < h->n; i++) if (d == 0 || h->v[i] != h->v[d - 1]) h->v[d++] = h->v[i];
    h->n = d;
}

#define MAX_WORD 256 /* longer words are hashed from a heap copy */

/* features._forms (and, with ``bigrams``, features._bigrams) of text.words(normed, cut), added to the arrays. */
static int scan_words(PyObject *normed, int cut, Hashes *forms, Hashes *bigrams) {
    int kind = PyUnicode_KIND(normed);
    const void *data = PyUnicode_DATA(normed);
    Py_ssize_t len = PyUnicode_GET_LENGTH(normed), stop = len;
    if (cut) { /* the last word is dropped: a truncated headline or snippet */
        Py_ssize_t last = -1;
        for (Py_ssize_t i = 0; i < len;) {
            Py_ssize_t j = word_end(kind, data, len, i);
            if (j > i) { last = i; i = j; } else i++;
        }
        if (last >= 0) stop = last;
    }
    Py_UCS4 local[MAX_WORD];
    for (Py_ssize_t i = 0; i < stop;) {
        Py_ssize_t j = word_end(kind, data, len, i);
        if (j == i) { i++; continue; }
        Py_ssize_t n = j - i;
        i = j;
        if (n == 1 && IS_HANGUL(PyUnicode_READ(kind, data, j - 1))) continue; /* single syllables are dropped */
        Py_UCS4 *w = n <= MAX_WORD ? local : PyMem_Malloc(n * sizeof(Py_UCS4));
        if (!w) { PyErr_NoMemory(); return -1; }
        for (Py_ssize_t k = 0; k < n; k++) w[k] = PyUnicode_READ(kind, data, j - n + k);
        uint32_t h = crc_chars(w, n);
        int rc = hashes_add(forms, h ? h : 1);
        Py_ssize_t sn = stem_len(w, n);
        if (rc == 0 && sn != n) {
            uint32_t st = crc_chars(w, sn);
            rc = hashes_add(forms, st ? st : 1);
        }
        if (rc == 0 && bigrams && n >= 3 && IS_HANGUL(w[0])) {
            for (Py_ssize_t k = 0; rc == 0 && k + 1 < n; k++) {
                uint32_t b = crc_chars(w + k, 2) & 0xFFFF;
                rc = hashes_add(bigrams, b ? b : 1);
            }
        }
        if (w != local) PyMem_Free(w);
        if (rc < 0) return -1;
    }
    return 0;
}

/* features.word_arrays: the headline's word forms and bigrams and the text's word forms, of normalised texts,
 * as features.Packed holds them: (head, bigrams, text (not in the headline), everything (both)) as sorted bytes. */
static PyObject *word_sets(PyObject *self, PyObject *args) {
    PyObject *head_text, *body_text;
    int head_cut, body_cut;
    if (!PyArg_ParseTuple(args, "UpUp", &head_text, &head_cut, &body_text, &body_cut)) return NULL;
    Hashes head = {0}, bigrams = {0}, words = {0}, text = {0}, all = {0};
    PyObject *out = NULL;
    if (scan_words(head_text, head_cut, &head, &bigrams) < 0 || scan_words(body_text, body_cut, &words, NULL) < 0)
        goto done;
    hashes_distinct(&head);
    hashes_distinct(&bigrams);
    hashes_distinct(&words);
    Py_ssize_t h = 0;
    for (Py_ssize_t i = 0; i < words.n; i++) { /* text = words - head; everything = head | words (sorted merges) */
        while (h < head.n && head.v[h] < words.v[i]) { if (hashes_add(&all, head.v[h++]) < 0) goto done; }
        int both = h < head.n && head.v[h] == words.v[i];
        if (both) h++;
        else if (hashes_add(&text, words.v[i]) < 0) goto done;
        if (hashes_add(&all, words.v[i]) < 0) goto done;
    }
    while (h < head.n) { if (hashes_add(&all, head.v[h++]) < 0) goto done; }
    uint16_t *b16 = PyMem_Malloc((bigrams.n + 1) * sizeof(uint16_t));
    if (!b16) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < bigrams.n; i++) b16[i] = (uint16_t)bigrams.v[i];
#define BYTES_OF(h) ((h).v ? (const char *)(h).v : ""), (h).n * (Py_ssize_t)sizeof(uint32_t) /* y# of NULL is None */
    out = Py_BuildValue("(y#y#y#y#)", BYTES_OF(head), (const char *)b16, bigrams.n * (Py_ssize_t)sizeof(uint16_t),
                        BYTES_OF(text), BYTES_OF(all));
#undef BYTES_OF
    PyMem_Free(b16);
done:
    PyMem_Free(head.v); PyMem_Free(bigrams.v); PyMem_Free(words.v); PyMem_Free(text.v); PyMem_Free(all.v);
    return out;
}


/* ---- figures (text.figures) ---------------------------------------------------------------------------- */

/* text._FIGURE's units in the order the regex tries them, with their numbers (text._UNITS, aliases folded). */
static const char *const UNIT_TEXT[] = {"%", "퍼센트", "명", "억", "조", "만", "원", "달러", "건", "개", "곳", "배",
                                        "호", "위", "세", "대", "톤", "마력", "mm", "㎜", "km", "㎞", "kwh", "mwh",
                                        "gwh", "시", "일", "월", "년"};
static const int UNIT_CODE[] = {1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 18, 19, 19, 20, 21,
                                22, 23, 24, 25, 26};
#define N_UNITS ((int)(sizeof UNIT_CODE / sizeof UNIT_CODE[0]))
static Py_UCS4 unit_chars[N_UNITS][4];
static int unit_len[N_UNITS];

static int units_init(void) {
    for (int u = 0; u < N_UNITS; u++) {
        PyObject *s = PyUnicode_FromString(UNIT_TEXT[u]);
        if (!s) return -1;
        Py_ssize_t n = PyUnicode_GET_LENGTH(s);
        if (n > 4) { Py_DECREF(s); PyErr_SetString(PyExc_ValueError, "unit too long"); return -1; }
        for (Py_ssize_t k = 0; k < n; k++) unit_chars[u][k] = PyUnicode_READ_CHAR(s, k);
        unit_len[u] = (int)n;
        Py_DECREF(s);
    }
    return 0;
}

/* The figures of one normalised text (text.figures), added to ``out``. */
static int scan_figures(PyObject *normed, Hashes *out) {
    int kind = PyUnicode_KIND(normed);
    const void *data = PyUnicode_DATA(normed);
    Py_ssize_t len = PyUnicode_GET_LENGTH(normed);
    for (Py_ssize_t i = 0; i < len;) {
        if (!IS_DIGIT(PyUnicode_READ(kind, data, i))) { i++; continue; }
        /* \d+(?:[.,]\d+)* greedily from i: no shorter prefix can be followed by a unit (see text.figures) */
        Py_ssize_t j = i;
        while (j < len && IS_DIGIT(PyUnicode_READ(kind, data, j))) j++;
        while (j + 1 < len) {
            Py_UCS4 sep = PyUnicode_READ(kind, data, j);
            if (!((sep == '.' || sep == ',') && IS_DIGIT(PyUnicode_READ(kind, data, j + 1)))) break;
            j += 2;
            while (j < len && IS_DIGIT(PyUnicode_READ(kind, data, j))) j++;
        }
        int code = 0;
        Py_ssize_t end = j;
        for (int gap = 1; gap >= 0 && !code; gap--) { /* \s? is greedy: with one whitespace first, then without */
            Py_ssize_t at = j + gap;
            if (gap && !(j < len && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, j)))) continue;
            for (int u = 0; u < N_UNITS && !code; u++) {
                if (at + unit_len[u] > len) continue;
                int same = 1;
                for (int k = 0; k < unit_len[u] && same; k++) same = PyUnicode_READ(kind, data, at + k) == unit_chars[u][k];
                if (same) { code = UNIT_CODE[u]; end = at + unit_len[u]; }
            }
        }
        if (!code) { i = j; continue; } /* an inner start has the same digits' end and the same fate */
        /* The value: separators "," dropped, a fraction's trailing zeros (and then its points) dropped, non-ASCII
         * '?'; hashed as it is read, however long. */
        Py_ssize_t stop = j;
        int point = 0;
        for (Py_ssize_t k = i; k < j && !point; k++) point = PyUnicode_READ(kind, data, k) == '.';
        if (point) {
            for (Py_UCS4 drop = '0';; drop = '.') { /* zeros first, then points; commas are not there */
                while (stop > i && (PyUnicode_READ(kind, data, stop - 1) == drop ||
                                    PyUnicode_READ(kind, data, stop - 1) == ','))
                    stop--;
                if (drop == '.') break;
            }
        }
        uint32_t crc = 0xFFFFFFFFu;
        for (Py_ssize_t k = i; k < stop; k++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, k);
            if (c == ',') continue;
            unsigned char byte = c < 0x80 ? (unsigned char)c : '?';
            crc = crc_table[(crc ^ byte) & 0xFF] ^ (crc >> 8);
        }
        if (hashes_add(out, (uint32_t)code << 24 | ((crc ^ 0xFFFFFFFFu) & 0xFFFFFF)) < 0) return -1;
        i = end;
    }
    return 0;
}

/* features.figure_arrays: the headline's figures and the headline's and lead's figures, of normalised texts, as
 * sorted distinct uint32 bytes. */
static PyObject *figures(PyObject *self, PyObject *args) {
    PyObject *head_text, *lead_text;
    if (!PyArg_ParseTuple(args, "UU", &head_text, &lead_text)) return NULL;
    Hashes head = {0}, all = {0};
    PyObject *out = NULL;
    if (scan_figures(head_text, &head) < 0) goto done;
    hashes_distinct(&head);
    for (Py_ssize_t i = 0; i < head.n; i++) if (hashes_add(&all, head.v[i]) < 0) goto done;
    if (scan_figures(lead_text, &all) < 0) goto done;
    hashes_distinct(&all);
#define BYTES_OF(h) ((h).v ? (const char *)(h).v : ""), (h).n * (Py_ssize_t)sizeof(uint32_t)
    out = Py_BuildValue("(y#y#)", BYTES_OF(head), BYTES_OF(all));
#undef BYTES_OF
done:
    PyMem_Free(head.v); PyMem_Free(all.v);
    return out;
}

/* ---- shingle hashes (shingles.shingle_hashes_py) -------------------------------------------------- */

#define SHINGLE 5
static inline int keep_unit(Py_UCS4 c) {
    return (c >= 0xAC00 && c < 0xD7A4) || (c >= 0x30 && c < 0x3A) || (c >= 0x41 && c < 0x5B) ||
           (c >= 0x61 && c < 0x7B) || (c >= 0x4E00 && c < 0xA000);
}

/* Each BMP code point's unit in shingles (A-Z folded), 0 when it is not kept (see keep_unit). */
static uint16_t unit_map[1 << 16];

static void unit_map_init(void) {
    for (Py_UCS4 c = 1; c < (1 << 16); c++)
        if (keep_unit(c)) unit_map[c] = (uint16_t)(c >= 0x41 && c < 0x5B ? c + 0x20 : c);
}

/* The UTF-16 code units kept in shingles, A-Z folded; non-BMP characters (surrogate pairs in UTF-16)
 * and lone surrogates are never kept. Returns how many. */
static Py_ssize_t kept_units(PyObject *text, uint16_t *codes) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), m = 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *d = data;
        for (Py_ssize_t i = 0; i < len; i++) { uint16_t u = unit_map[d[i]]; codes[m] = u; m += u != 0; }
    } else if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *d = data;
        for (Py_ssize_t i = 0; i < len; i++) { uint16_t u = unit_map[d[i]]; codes[m] = u; m += u != 0; }
    } else {
        const Py_UCS4 *d = data;
        for (Py_ssize_t i = 0; i < len; i++) {
            uint16_t u = d[i] < (1 << 16) ? unit_map[d[i]] : 0;
            codes[m] = u;
            m += u != 0;
        }
    }
    return m;
}

/* keep_distinct's table of the values seen, kept all zero between calls (the GIL is held throughout); big enough
 * for texts of ~16,000 characters, longer ones get a table of their own for the call. */
#define SEEN_KEPT (1 << 16)
static uint32_t seen_kept[SEEN_KEPT];

/* Keeps the first of each value of ``h[0..n)``, in place and in order; returns how many are kept. The kept values
 * at most ``limit`` are also written to ``low`` (``*nlow`` of them): the candidates for the sketch pool. */
static Py_ssize_t keep_distinct(uint32_t *h, Py_ssize_t n, uint32_t limit, uint32_t *low, Py_ssize_t *nlow) {
    Py_ssize_t size = 16;
    while (size < 4 * n) size <<= 1; /* mostly empty: a probe rarely meets another value */
    uint32_t *seen_table = size <= SEEN_KEPT ? seen_kept : PyMem_Calloc(size, sizeof(uint32_t));
    if (!seen_table) return -1;
    uint32_t mask = (uint32_t)(size - 1);
    Py_ssize_t d = 0, c = 0;
    int zero = 0; /* 0 marks an empty entry, so the value 0 is tracked apart */
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t v = h[i];
        if (v == 0) { if (!zero) { zero = 1; h[d++] = 0; low[c++] = 0; } continue; }
        uint32_t at = (v ^ (v >> 16)) & mask;
        while (seen_table[at] && seen_table[at] != v) at = (at + 1) & mask;
        if (!seen_table[at]) {
            seen_table[at] = v;
            h[d++] = v;
            if (v <= limit) low[c++] = v;
        }
    }
    if (seen_table == seen_kept) memset(seen_table, 0, size * sizeof(uint32_t));
    else PyMem_Free(seen_table);
    *nlow = c;
    return d;
}

#define MAX_TAKE (1 << 20) /* the most hashes a pool or sample may ask for (shingles.POOL and SAMPLE_CAP are tens) */

/* The threshold below which about 1.5 * ``want`` of ``n`` uniform hashes fall (all of them for few hashes). */
static uint32_t pool_limit(Py_ssize_t n, Py_ssize_t want) {
    uint64_t limit = n <= 2 * want ? UINT32_MAX : ((uint64_t)(3 * want) << 31) / (uint64_t)n;
    return limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit;
}

/* The ``want`` smallest of ``n`` distinct hashes (or all of them), ascending, into ``out``; returns how
 * many. ``low`` holds the ``nlow`` of them found at most ``pool_limit(n0, want)`` for some n0 >= n: if they are
 * enough, only they are sorted; else those below a doubled threshold are gathered again until enough pass. */
static Py_ssize_t smallest(const uint32_t *h, Py_ssize_t n, Py_ssize_t want, uint32_t *out, uint32_t *low,
                           Py_ssize_t nlow, uint64_t limit) {
    Py_ssize_t take = n < want ? n : want;
    if (take <= 0) return 0;
    for (Py_ssize_t c = nlow;;) {
        if (c >= take) {
            sort_u32(low, c);
            memcpy(out, low, take * sizeof(uint32_t));
            return take;
        }
        limit = limit >= UINT32_MAX / 2 ? UINT32_MAX : 2 * limit + 1;
        c = 0;
        for (Py_ssize_t i = 0; i < n; i++) if (h[i] <= limit) low[c++] = h[i];
    }
}

/* shingles' working memory for the texts of most articles (a few thousand characters; the GIL is held throughout):
 * a malloc and free of tens of kilobytes per article cost more than the hashing. Longer texts get their own. */
#define SHINGLE_CODES 8192
#define SHINGLE_OUT (1 << 15)
static uint16_t shingle_codes[SHINGLE_CODES];
static uint32_t shingle_out[SHINGLE_OUT];

/* shingles.shingle_hashes_py: (distinct hashes of the text's SHINGLE-unit shingles, in first-seen order;
 * the ``want`` smallest of them, ascending; the sample: those below ``below``, the ``sample_cap`` smallest,
 * ascending; the passage sample: all of them below ``passage_below``, ascending), as uint32 bytes. A shingle is
 * its first four units read as one little-endian uint64 and its fifth, mixed as the Python twin does. */
static PyObject *shingles(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t want, sample_cap;
    unsigned long below, passage_below;
    if (!PyArg_ParseTuple(args, "Unknk", &text, &want, &below, &sample_cap, &passage_below)) return NULL;
    if (want < 0 || sample_cap < 0 || want > MAX_TAKE || sample_cap > MAX_TAKE) {
        PyErr_SetString(PyExc_ValueError, "pool or sample size out of range");
        return NULL;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    uint16_t *codes = len < SHINGLE_CODES ? shingle_codes : PyMem_Malloc((len + 1) * sizeof(uint16_t));
    if (!codes) return PyErr_NoMemory();
    Py_ssize_t m = kept_units(text, codes);
    Py_ssize_t count = m - SHINGLE + 1;
    if (count <= 0) {
        if (codes != shingle_codes) PyMem_Free(codes);
        return Py_BuildValue("(y#y#y#y#)", "", (Py_ssize_t)0, "", (Py_ssize_t)0, "", (Py_ssize_t)0, "", (Py_ssize_t)0);
    }
    /* out: the hashes (then the distinct ones), low, pool (want), sample, passage (count each) */
    Py_ssize_t room = 4 * count + want + 1;
    uint32_t *out = room <= SHINGLE_OUT ? shingle_out : PyMem_Malloc(room * sizeof(uint32_t));
    if (!out) { if (codes != shingle_codes) PyMem_Free(codes); return PyErr_NoMemory(); }
    const uint64_t mix1 = 0x9E3779B97F4A7C15ull, mix2 = 0xC2B2AE3D27D4EB4Full;
    uint64_t quad = 0;
    for (int k = 3; k >= 0; k--) quad = (quad << 16) | codes[k];
    for (Py_ssize_t i = 0;; i++) {
        uint64_t h = (quad * mix1) ^ ((uint64_t)codes[i + 4] * mix2);
        h ^= h >> 29;
        h *= mix1;
        out[i] = (uint32_t)(h >> 32);
        if (i + 1 >= count) break;
        quad = (quad >> 16) | ((uint64_t)codes[i + 4] << 48);
    }
    if (codes != shingle_codes) PyMem_Free(codes);
    PyObject *res = NULL;
    uint32_t limit = pool_limit(count, want), *low = out + count;
    Py_ssize_t nlow;
    Py_ssize_t d = keep_distinct(out, count, limit, low, &nlow);
    if (d < 0) { PyErr_NoMemory(); goto done; }
    uint32_t *pool = out + 2 * count, *sample = pool + want, *passage = sample + count;
    Py_ssize_t np = smallest(out, d, want, pool, low, nlow, limit), ns = 0, npass = 0;
    /* The passage sample: the distinct hashes below ``passage_below``, ascending. */
    for (Py_ssize_t i = 0; i < d; i++) if (out[i] < passage_below) passage[npass++] = out[i];
    sort_u32(passage, npass);
    /* The sample: the distinct hashes below ``below``, the ``sample_cap`` smallest of them, ascending (the start of
     * the passage sample when that holds all of them). */
    if (below <= passage_below) {
        while (ns < npass && passage[ns] < below) ns++;
        memcpy(sample, passage, ns * sizeof(uint32_t));
    } else {
        for (Py_ssize_t i = 0; i < d; i++) if (out[i] < below) sample[ns++] = out[i];
        sort_u32(sample, ns);
    }
    if (ns > sample_cap) ns = sample_cap;
    res = Py_BuildValue("(y#y#y#y#)", (const char *)out, d * (Py_ssize_t)sizeof(uint32_t), (const char *)pool,
                        np * (Py_ssize_t)sizeof(uint32_t), (const char *)sample, ns * (Py_ssize_t)sizeof(uint32_t),
                        (const char *)passage, npass * (Py_ssize_t)sizeof(uint32_t));
done:
    if (out != shingle_out) PyMem_Free(out);
    return res;
}

/* shingles.char_pairs of ``text`` as bits of a 65,536-bit map (context pairs for subject_conflict). */
static int pair_bits(PyObject *text, uint64_t *bits) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    uint16_t *codes = PyMem_Malloc((len + 1) * sizeof(uint16_t));
    if (!codes) { PyErr_NoMemory(); return -1; }
    Py_ssize_t m = kept_units(text, codes);
    if (m == 1) bits[codes[0] >> 6] |= 1ull << (codes[0] & 63);
    for (Py_ssize_t i = 0; i + 1 < m; i++) {
        uint32_t h = ((uint32_t)codes[i] * 0x9E3779B1u + (uint32_t)codes[i + 1] * 0x85EBCA6Bu) >> 16;
        bits[h >> 6] |= 1ull << (h & 63);
    }
    PyMem_Free(codes);
    return 0;
}
/* ---- postings (postings.Postings, postings._Pending, postings.Multimap) -------------------------- */

/* postings.Postings: uint32 keys sorted and bucketed by their top 16 bits (``starts``: where each
   bucket begins), of which only the low 16 bits are stored, and their values. */
typedef struct { Py_buffer keys, vals, starts; } Sorted;

static int sorted_open(Sorted *m, PyObject *keys, PyObject *vals, PyObject *starts) {
    if (PyObject_GetBuffer(keys, &m->keys, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (PyObject_GetBuffer(vals, &m->vals, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&m->keys);
        return -1;
    }
    if (PyObject_GetBuffer(starts, &m->starts, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&m->keys);
        PyBuffer_Release(&m->vals);
        return -1;
    }
    if (m->keys.itemsize != 2 || m->vals.itemsize != 4 || 2 * m->keys.len != m->vals.len ||
        m->starts.itemsize != 4 || m->starts.len != 4 * ((1 << 16) + 1)) {
        PyBuffer_Release(&m->keys);
        PyBuffer_Release(&m->vals);
        PyBuffer_Release(&m->starts);
        PyErr_SetString(PyExc_TypeError, "expected uint16 low keys, uint32 values and 65,537 bucket starts");
        return -1;
    }
    return 0;
}

static void sorted_close(Sorted *m) {
    PyBuffer_Release(&m->keys);
    PyBuffer_Release(&m->vals);
    PyBuffer_Release(&m->starts);
}

/* [lo, hi) of ``full_key`` in the sorted keys: a search of its bucket for its low 16 bits. */
static void sorted_run(const Sorted *m, uint32_t full_key, Py_ssize_t *lo, Py_ssize_t *hi) {
    const uint16_t *k = m->keys.buf;
    const uint32_t *starts = m->starts.buf;
    uint16_t key = (uint16_t)(full_key & 0xFFFF);
    Py_ssize_t n = starts[(full_key >> 16) + 1], a = starts[full_key >> 16], b, stored = m->keys.len / 2;
    if (n > stored) n = stored; /* bucket starts the caller got wrong read nothing outside the keys */
    if (a > n) a = n;
    b = n;
    while (a < b) { Py_ssize_t mid = (a + b) / 2; if (k[mid] < key) a = mid + 1; else b = mid; }
    *lo = a;
    /* Most keys have a few entries: step over them before searching (the search misses the cache). */
    for (b = a + 8; a < n && a < b && k[a] == key; a++) {}
    if (a == b) {
        b = n;
        while (a < b) { Py_ssize_t mid = (a + b) / 2; if (k[mid] <= key) a = mid + 1; else b = mid; }
    }
    *hi = a;
}

/* [lo, hi) of each of ``n`` keys (sorted_run). The bucket bounds and keys of them all are asked for first: at a
 * million articles every search misses the cache, and the misses of an article's keys then overlap. */
static void sorted_runs(const Sorted *m, const uint32_t *keys, Py_ssize_t n, Py_ssize_t *lo, Py_ssize_t *hi) {
    const uint32_t *starts = m->starts.buf;
    const char *k = m->keys.buf;
    for (Py_ssize_t i = 0; i < n; i++) __builtin_prefetch(starts + (keys[i] >> 16));
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t from = (Py_ssize_t)starts[keys[i] >> 16] * 2, to = (Py_ssize_t)starts[(keys[i] >> 16) + 1] * 2;
        if (to - from > 16 * 64) to = from + 16 * 64; /* a crowded bucket: its first lines */
        for (Py_ssize_t at = from & ~(Py_ssize_t)63; at < to; at += 64) __builtin_prefetch(k + at);
    }
    for (Py_ssize_t i = 0; i < n; i++) sorted_run(m, keys[i], &lo[i], &hi[i]);
}

/* postings._Pending: a Postings' recent additions in the order added, chained by a hash of the key:
 * heads[h] is one past the newest entry whose key hashes to h (0: none), chain[i] one past the entry before
 * entry i in its chain (always an earlier one). */
#define PENDING_MIX 0x9E3779B1u
typedef struct {
    Py_buffer b[4];
    int opened;
    uint32_t *keys, *vals;
    int32_t *chain, *heads;
    Py_ssize_t n, room;
    int shift;
} Pending;

static void pending_close(Pending *p) {
    for (int i = 0; i < p->opened; i++) PyBuffer_Release(&p->b[i]);
    p->opened = 0;
}

/* Opens _Pending.parts(): (keys, vals, chain, heads, n); ``writable`` for Index.add. */
static int pending_open(Pending *p, PyObject *parts, int writable) {
    p->opened = 0;
    if (!PyTuple_Check(parts) || PyTuple_GET_SIZE(parts) != 5) {
        PyErr_SetString(PyExc_TypeError, "expected the postings buffer's (keys, vals, chain, heads, n)");
        return -1;
    }
    for (; p->opened < 4; p->opened++) {
        int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(parts, p->opened), &p->b[p->opened], flags) < 0) {
            pending_close(p);
            return -1;
        }
    }
    p->room = p->b[0].len / 4;
    p->n = PyLong_AsSsize_t(PyTuple_GET_ITEM(parts, 4));
    Py_ssize_t nheads = p->b[3].len / 4;
    int ok = !(p->n == -1 && PyErr_Occurred()) && p->n >= 0 && p->n <= p->room && nheads >= 2 &&
             !(nheads & (nheads - 1)) && nheads <= ((Py_ssize_t)1 << 31);
    for (int i = 0; i < 4; i++) ok = ok && p->b[i].itemsize == 4 && (i == 3 || p->b[i].len == p->b[0].len);
    if (!ok) {
        pending_close(p);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "postings buffer arrays of unexpected shape");
        return -1;
    }
    p->keys = p->b[0].buf;
    p->vals = p->b[1].buf;
    p->chain = p->b[2].buf;
    p->heads = p->b[3].buf;
    p->shift = 32;
    while (((Py_ssize_t)1 << (32 - p->shift)) < nheads) p->shift--;
    return 0;
}

static inline int32_t *pending_head(const Pending *p, uint32_t key) {
    return &p->heads[(uint32_t)(key * PENDING_MIX) >> p->shift];
}

/* The entry before ``at`` (both one past an index) in its chain, 0 at the end (or on a chain that does not
 * go back, which only a damaged buffer has). */
static inline int32_t pending_next(const Pending *p, int32_t at) {
    int32_t next = p->chain[at - 1];
    return next < at && next >= 0 ? next : 0;
}

#define PENDING_EACH(p, key, at) \
    for (int32_t at = *pending_head(p, key); at > 0 && at <= (p)->n; at = pending_next(p, at)) \
        if ((p)->keys[at - 1] == (key))

/* How many values are buffered under ``key``. */
static Py_ssize_t pending_count(const Pending *p, uint32_t key) {
    Py_ssize_t count = 0;
    PENDING_EACH(p, key, at) count++;
    return count;
}

/* pending_count of each of ``n`` keys into ``more``, their chain heads asked for first (see sorted_runs). */
static void pending_counts(const Pending *p, const uint32_t *keys, Py_ssize_t n, Py_ssize_t *more) {
    for (Py_ssize_t i = 0; i < n; i++) __builtin_prefetch(pending_head(p, keys[i]));
    for (Py_ssize_t i = 0; i < n; i++) more[i] = pending_count(p, keys[i]);
}

/* Buffers ``val`` under ``key`` (the caller checked there is room). */
static void pending_put(Pending *p, uint32_t key, uint32_t val) {
    Py_ssize_t i = p->n++;
    int32_t *head = pending_head(p, key);
    p->keys[i] = key;
    p->vals[i] = val;
    p->chain[i] = *head;
    *head = (int32_t)(i + 1);
}

/* One candidate slot: how many (key, value) entries found it, how many of those were sample keys, and the first
 * key that did. */
typedef struct { uint32_t slot, hits, first, used, shared; } Found;

static int found_by_discovery(const void *a, const void *b) {
    const Found *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int found_by_hits(const void *a, const void *b) {
    const Found *x = a, *y = b;
    if (x->hits != y->hits) return x->hits > y->hits ? -1 : 1;
    return x->slot > y->slot ? -1 : x->slot < y->slot;
}

/* The slots found so far: an open-addressing table, and where its used entries are (so that reading and
 * clearing them costs what was found, not the table's size). */
typedef struct { Found *table; uint32_t *used_at; Py_ssize_t mask, distinct; } Slots;

static void slots_hit(Slots *s, uint32_t slot, uint32_t which, int sample) {
    Py_ssize_t at = (Py_ssize_t)((slot * 0x9E3779B1u) & (uint32_t)s->mask);
    while (s->table[at].used && s->table[at].slot != slot) at = (at + 1) & s->mask;
    Found *f = &s->table[at];
    if (!f->used) {
        f->used = 1; f->slot = slot; f->hits = 0; f->first = which; f->shared = 0;
        s->used_at[s->distinct++] = (uint32_t)at;
    }
    f->hits++;
    f->shared += (uint32_t)sample;
    if (which < f->first) f->first = which;
}

/* find_candidates' table, kept all zero between calls (the GIL is held throughout) and grown as needed. */
static Found *slot_table;
static Py_ssize_t slot_table_size;

/* The slots found by the ``n`` query keys ``q`` (``caps[i]``: the posting cap of key i) within ``window`` of
 * ``t``, as Index.candidates orders them; ``*out`` (PyMem, freed by the caller) gets ``*kept`` of them.
 * ``lo``, ``hi`` and ``more`` hold ``n`` entries each: the stored range and count of buffered values of each
 * key, looked up here for the keys before ``known`` (the caller looked up the rest). Keys from ``sample_from``
 * on are sample keys, counted apart (Found.shared). Returns -1 with an exception set on error. */
static int find_candidates(const Sorted *m, const Pending *p, const uint32_t *q, const uint32_t *caps, Py_ssize_t n,
                           Py_ssize_t *lo, Py_ssize_t *hi, Py_ssize_t *more, Py_ssize_t known,
                           const Slot *records, Py_ssize_t nslots, double t, double window, Py_ssize_t limit,
                           Py_ssize_t crowd, Py_ssize_t min_hits, Py_ssize_t sample_from, Found **out,
                           Py_ssize_t *kept_out) {
    Slots s = {NULL, NULL, 0, 0};
    Found *list = NULL;
    int rc = -1;
    *out = NULL;
    *kept_out = 0;
    Py_ssize_t total = 0;
    sorted_runs(m, q, known, lo, hi);
    pending_counts(p, q, known, more);
    const uint32_t *v = m->vals.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (hi[i] - lo[i] + more[i] > (Py_ssize_t)caps[i]) { hi[i] = lo[i]; more[i] = 0; continue; } /* too common */
        total += hi[i] - lo[i] + more[i];
        for (Py_ssize_t j = lo[i]; j < hi[i]; j += 16) __builtin_prefetch(v + j); /* read below */
    }
    Py_ssize_t size = 16;
    while (size < 2 * total) size <<= 1;
    if (size > slot_table_size) {
        PyMem_Free(slot_table);
        slot_table = PyMem_Calloc(size, sizeof(Found));
        slot_table_size = slot_table ? size : 0;
    }
    s.used_at = PyMem_Malloc((total + 1) * sizeof(uint32_t));
    if (!slot_table || !s.used_at) { PyErr_NoMemory(); goto done; }
    s.table = slot_table;
    s.mask = size - 1;
    for (Py_ssize_t i = 0; i < n; i++)
        for (Py_ssize_t j = lo[i]; j < hi[i]; j++) slots_hit(&s, v[j], (uint32_t)i, i >= sample_from);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!more[i]) continue;
        PENDING_EACH(p, q[i], at) slots_hit(&s, p->vals[at - 1], (uint32_t)i, i >= sample_from);
    }
    /* One shared rare word is enough in a quiet index; in a crowd, MIN_HITS keys; and within the window. */
    Py_ssize_t least = s.distinct > crowd ? min_hits : 1, kept = 0;
    list = PyMem_Malloc((s.distinct + 1) * sizeof(Found));
    if (!list) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < s.distinct; i++) {
        Found f = s.table[s.used_at[i]];
        if ((Py_ssize_t)f.hits < least) continue;
        if ((Py_ssize_t)f.slot >= nslots) { PyErr_SetString(PyExc_IndexError, "slot out of range"); goto done; }
        if (fabs((double)records[f.slot].t - t) <= window) list[kept++] = f;
    }
    if (kept > limit) {
        qsort(list, kept, sizeof(Found), found_by_hits); /* most shared keys, then newest */
        kept = limit;
    } else {
        qsort(list, kept, sizeof(Found), found_by_discovery); /* in order of discovery */
    }
    *out = list;
    *kept_out = kept;
    list = NULL;
    rc = 0;
done:
    for (Py_ssize_t i = 0; i < s.distinct; i++) s.table[s.used_at[i]] = (Found){0, 0, 0, 0, 0};
    PyMem_Free(s.used_at); PyMem_Free(list);
    return rc;
}


/* Postings.merge, native: the buffered entries (_Pending, in the order added) merged into the sorted
 * postings, written to the output arrays (sized for all entries) with their bucket starts. As the numpy
 * merge does: buffered entries sorted by key, in the order added within a key, after the stored entries of
 * the same key. One pass over the stored entries instead of rebuilding their full keys to search them. */
typedef struct { uint32_t key, val; } Entry;

/* Stored entries [from, to) moved (memmove: the ranges may overlap) to end just before ``*w``, which moves back. */
static inline void move_entries(uint16_t *ok, uint32_t *ov, const uint16_t *k16, const uint32_t *v32, Py_ssize_t from,
                                Py_ssize_t to, Py_ssize_t *w) {
    Py_ssize_t count = to - from;
    *w -= count;
    if (count <= 0 || (ok + *w == k16 + from && ov + *w == v32 + from)) return; /* nothing to move, or already there */
    memmove(ok + *w, k16 + from, count * sizeof(uint16_t));
    memmove(ov + *w, v32 + from, count * sizeof(uint32_t));
}

static PyObject *postings_merge(PyObject *self, PyObject *args) {
    PyObject *keys, *vals, *starts, *pending, *okeys_obj, *ovals_obj, *ostarts_obj;
    if (!PyArg_ParseTuple(args, "OOOOOOO", &keys, &vals, &starts, &pending, &okeys_obj, &ovals_obj, &ostarts_obj))
        return NULL;
    Sorted m, o;
    Pending p;
    if (sorted_open(&m, keys, vals, starts) < 0) return NULL;
    if (sorted_open(&o, okeys_obj, ovals_obj, ostarts_obj) < 0) { sorted_close(&m); return NULL; }
    if (pending_open(&p, pending, 0) < 0) { sorted_close(&o); sorted_close(&m); return NULL; }
    Entry *e = NULL, *tmp = NULL;
    uint32_t *count = NULL;
    PyObject *out = NULL;
    Py_ssize_t n = p.n, nold = m.vals.len / 4;
    if (o.vals.len / 4 != nold + n || o.keys.readonly || o.vals.readonly || o.starts.readonly) {
        PyErr_SetString(PyExc_ValueError, "output arrays must be writable and hold every entry");
        goto done;
    }
    const uint32_t *in_starts = m.starts.buf;
    for (uint32_t b = 0; b < (1u << 16); b++) {
        if (in_starts[b] > in_starts[b + 1] || (b == 0 && in_starts[0] != 0)) {
            PyErr_SetString(PyExc_ValueError, "bucket starts must rise from 0");
            goto done;
        }
    }
    if ((Py_ssize_t)in_starts[1 << 16] != nold) {
        PyErr_SetString(PyExc_ValueError, "bucket starts must end at the number of stored entries");
        goto done;
    }
    e = PyMem_Malloc((n + 1) * sizeof(Entry));
    tmp = PyMem_Malloc((n + 1) * sizeof(Entry));
    count = PyMem_Calloc((1 << 16) + 1, sizeof(uint32_t));
    if (!e || !tmp || !count) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) e[i] = (Entry){p.keys[i], p.vals[i]};
    /* Stable radix sort by key: low 16 bits, then high 16 bits. */
    for (int shift = 0; shift <= 16; shift += 16) {
        memset(count, 0, ((1 << 16) + 1) * sizeof(uint32_t));
        for (Py_ssize_t i = 0; i < n; i++) count[((e[i].key >> shift) & 0xFFFF) + 1]++;
        for (int b = 0; b < (1 << 16); b++) count[b + 1] += count[b];
        for (Py_ssize_t i = 0; i < n; i++) tmp[count[(e[i].key >> shift) & 0xFFFF]++] = e[i];
        Entry *swap = e; e = tmp; tmp = swap;
    }
    /* A merge from the back, so the output may be the input's own storage grown in place (Postings keeps
     * room): an entry is written at or after where it was read. Equal keys keep stored entries first. */
    const uint16_t *k16 = m.keys.buf;
    const uint32_t *v32 = m.vals.buf, *st = m.starts.buf;
    uint16_t *ok = o.keys.buf;
    uint32_t *ov = o.vals.buf, *ost = o.starts.buf;
    int in_place = (void *)ok == (void *)k16 && (void *)ov == (void *)v32;
    Py_ssize_t w = nold + n, i = nold, ni = n;
    for (int64_t b = (1 << 16) - 1; b >= 0 && (ni > 0 || !in_place); b--) {
        Py_ssize_t lo = st[b];
        for (; ni > 0 && (e[ni - 1].key >> 16) == (uint32_t)b; ni--) {
            uint16_t low = (uint16_t)(e[ni - 1].key & 0xFFFF);
            Py_ssize_t from = i;
            while (from > lo && k16[from - 1] > low) from--;
            move_entries(ok, ov, k16, v32, from, i, &w); /* the stored entries after it */
            i = from;
            w--;
            ok[w] = low;
            ov[w] = e[ni - 1].val;
        }
        move_entries(ok, ov, k16, v32, lo, i, &w); /* the rest of the bucket */
        i = lo;
    }
    /* In place, what lies below the lowest buffered entry has not moved. New bucket starts: the old ones
     * shifted by the buffered entries of lower buckets (``st`` and ``ost`` may be one array). */
    Py_ssize_t below = 0;
    ni = 0;
    for (uint32_t b = 0; b < (1u << 16); b++) {
        uint32_t start = st[b];
        ost[b] = (uint32_t)(start + below);
        for (; ni < n && (e[ni].key >> 16) == b; ni++) below++;
    }
    ost[1 << 16] = (uint32_t)(nold + n);
    out = PyLong_FromSsize_t(nold + n);
done:
    PyMem_Free(e); PyMem_Free(tmp); PyMem_Free(count);
    pending_close(&p);
    sorted_close(&o);
    sorted_close(&m);
    return out;
}


/* Postings.add: ``value`` under each key of a uint32 buffer, into the pending buffer (postings._Pending.parts());
 * returns the buffer's new count. */
static PyObject *pending_add(PyObject *self, PyObject *args) {
    PyObject *parts, *keys_obj;
    unsigned long value;
    if (!PyArg_ParseTuple(args, "OOk", &parts, &keys_obj, &value)) return NULL;
    Pending p;
    if (pending_open(&p, parts, 1) < 0) return NULL;
    Py_buffer kb;
    if (open_items(keys_obj, &kb, 4, "keys") < 0) { pending_close(&p); return NULL; }
    PyObject *out = NULL;
    Py_ssize_t n = kb.len / 4;
    if (p.n + n > p.room) {
        PyErr_SetString(PyExc_OverflowError, "postings buffer full: merge first");
    } else {
        const uint32_t *keys = kb.buf;
        for (Py_ssize_t i = 0; i < n; i++) pending_put(&p, keys[i], (uint32_t)value);
        out = PyLong_FromSsize_t(p.n);
    }
    PyBuffer_Release(&kb);
    pending_close(&p);
    return out;
}

/* One int32 or uint32 array of the index (array.array), checked to hold ``n`` items (or any when n < 0). */
static const void *open_column(PyObject *obj, Py_buffer *b, Py_ssize_t n, const char *what) {
    if (open_items(obj, b, 4, what) < 0) return NULL;
    if (n >= 0 && b->len / 4 != n) {
        PyBuffer_Release(b);
        PyErr_Format(PyExc_ValueError, "%s: unexpected length", what);
        return NULL;
    }
    return b->buf;
}

/* candidates.find: the slots found by the query keys (as find_slots ranks them), grouped into at most
 * ``stories_cap`` stories in the order first found, each with its found members and then up to ``members_cap``
 * of its newest members within the window (walking ``prev`` from ``last[story]``), those not found, when
 * ``members_n[story]`` says there are more. Returns (stories, slots, owner, shared) as uint32 bytes; ``shared``:
 * how many of the new article's sample keys found each slot (0 for the members walked to). */
static PyObject *find(PyObject *self, PyObject *args) {
    PyObject *keys, *vals, *starts, *pending, *head_obj, *text_obj, *sample_obj, *table_obj, *records_obj, *last_obj,
        *count_obj, *params;
    double t, window, common;
    int long_text;
    if (!PyArg_ParseTuple(args, "OOOOOOOOdpOOOddO!", &keys, &vals, &starts, &pending, &head_obj, &text_obj,
                          &sample_obj, &table_obj, &common, &long_text, &records_obj, &last_obj, &count_obj, &t, &window,
                          &PyTuple_Type, &params))
        return NULL;
    /* candidates.LIMIT, CROWD, MIN_HITS, STORIES, MEMBERS, LONG_TEXT_KEYS, MAX_WORD_POSTINGS, MAX_SHINGLE_POSTINGS,
     * signature.SHINGLE_SALT */
    Py_ssize_t c[9];
    if (PyTuple_GET_SIZE(params) != 9) { PyErr_SetString(PyExc_ValueError, "unexpected parameters"); return NULL; }
    for (int i = 0; i < 9; i++) {
        c[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(params, i));
        if ((c[i] == -1 && PyErr_Occurred()) || c[i] < 0 || (i < 8 && c[i] > MAX_TAKE)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad parameter");
            return NULL;
        }
    }
    Py_ssize_t limit = c[0], crowd = c[1], min_hits = c[2], stories_cap = c[3], members_cap = c[4];
    Sorted m;
    Pending p;
    Py_buffer lb, nb;
    Buffers bs = {.n = 0};
    int opened = 0;
    if (sorted_open(&m, keys, vals, starts) < 0) return NULL;
    if (pending_open(&p, pending, 0) < 0) { sorted_close(&m); return NULL; }
    Py_ssize_t n = 0, kept = 0, *lo = NULL, *hi = NULL, *more = NULL, nslots = 0, nstories = 0;
    Found *list = NULL;
    uint64_t *rare = NULL;
    uint32_t *q = NULL, *caps = NULL, *out_stories = NULL, *out_slots = NULL, *out_owner = NULL, *out_shared = NULL;
    PyObject *out = NULL;
    Py_ssize_t nh, nt, nsa, nw;
    const uint32_t *head, *text, *sample;
    const float *table;
    if (!(head = buffers_take(&bs, head_obj, 4, "head", &nh)) || !(text = buffers_take(&bs, text_obj, 4, "text", &nt)) ||
        !(sample = buffers_take(&bs, sample_obj, 4, "sample", &nsa)) ||
        !(table = buffers_take(&bs, table_obj, 4, "word table", &nw)))
        goto done;
    if (!nw || (nw & (nw - 1))) { PyErr_SetString(PyExc_ValueError, "word table of unexpected size"); goto done; }
    /* candidates.query: the rare headline words, the rare text words (a long text: its rarest few), the sample. */
    q = PyMem_Malloc((nh + nt + nsa + 1) * sizeof(uint32_t));
    caps = PyMem_Malloc((nh + nt + nsa + 1) * sizeof(uint32_t));
    rare = PyMem_Malloc((nt + 1) * sizeof(uint64_t));
    if (!q || !caps || !rare) { PyErr_NoMemory(); goto done; }
    uint32_t wmask = (uint32_t)(nw - 1);
    for (Py_ssize_t i = 0; i < nh; i++)
        if (table[head[i] & wmask] <= common) { q[n] = head[i]; caps[n++] = (uint32_t)c[6]; }
    Py_ssize_t nr = 0;
    for (Py_ssize_t i = 0; i < nt; i++)
        if (table[text[i] & wmask] <= common) rare[nr++] = rare_key(table[text[i] & wmask], text[i]);
    if (long_text && nr > c[5]) nr = smallest_u64(rare, nr, c[5], rare); /* in place: kept ones only move left */
    for (Py_ssize_t i = 0; i < nr; i++) { q[n] = (uint32_t)rare[i]; caps[n++] = (uint32_t)c[6]; }
    Py_ssize_t sample_from = n;
    for (Py_ssize_t i = 0; i < nsa; i++) { q[n] = sample[i] ^ (uint32_t)c[8]; caps[n++] = (uint32_t)c[7]; }
    const Slot *records = buffers_take(&bs, records_obj, sizeof(Slot), "records", &nslots);
    if (!records) goto done;
    const int32_t *last = open_column(last_obj, &lb, -1, "last");
    if (!last) goto done;
    opened++;
    const uint32_t *count = open_column(count_obj, &nb, lb.len / 4, "members_n");
    if (!count) goto done;
    opened++;
    Py_ssize_t nstory_ids = lb.len / 4;
    lo = PyMem_Malloc((n + 1) * sizeof *lo);
    hi = PyMem_Malloc((n + 1) * sizeof *hi);
    more = PyMem_Malloc((n + 1) * sizeof *more);
    if (!lo || !hi || !more) { PyErr_NoMemory(); goto done; }
    if (find_candidates(&m, &p, q, caps, n, lo, hi, more, n, records, nslots, t, window, limit, crowd, min_hits,
                        sample_from, &list, &kept) < 0)
        goto done;
    Py_ssize_t room = kept + (stories_cap > 0 ? stories_cap : 0) * (members_cap > 0 ? members_cap : 0) + 1;
    out_stories = PyMem_Malloc(((stories_cap > 0 ? stories_cap : 0) + 1) * sizeof(uint32_t));
    out_slots = PyMem_Malloc(room * sizeof(uint32_t));
    out_owner = PyMem_Malloc(room * sizeof(uint32_t));
    out_shared = PyMem_Malloc(room * sizeof(uint32_t));
    if (!out_stories || !out_slots || !out_owner || !out_shared) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < kept; i++) { /* the stories, in the order their first member was found */
        int32_t story = records[list[i].slot].story;
        if (story < 0 || story >= nstory_ids) { PyErr_SetString(PyExc_IndexError, "story out of range"); goto done; }
        Py_ssize_t at = 0;
        while (at < nstories && out_stories[at] != (uint32_t)story) at++;
        if (at == nstories && nstories < stories_cap) out_stories[nstories++] = (uint32_t)story;
    }
    Py_ssize_t w = 0;
    for (Py_ssize_t at = 0; at < nstories; at++) {
        uint32_t story = out_stories[at];
        Py_ssize_t from = w;
        for (Py_ssize_t i = 0; i < kept; i++) {
            if ((uint32_t)records[list[i].slot].story != story) continue;
            out_slots[w] = list[i].slot;
            out_shared[w] = list[i].shared;
            out_owner[w++] = (uint32_t)at;
        }
        if ((Py_ssize_t)count[story] <= w - from) continue;
        Py_ssize_t walked = 0, steps = 0, found_here = w;
        for (int32_t slot = last[story]; slot >= 0 && walked < members_cap && steps <= nslots;
             slot = records[slot].prev, steps++) {
            if (slot >= nslots) { PyErr_SetString(PyExc_IndexError, "member slot out of range"); goto done; }
            if (fabs((double)records[slot].t - t) > window) continue;
            walked++; /* the newest ``members_cap`` within the window, found or not */
            int seen = 0;
            for (Py_ssize_t j = from; j < found_here && !seen; j++) seen = out_slots[j] == (uint32_t)slot;
            if (seen) continue;
            out_slots[w] = (uint32_t)slot;
            out_shared[w] = 0;
            out_owner[w++] = (uint32_t)at;
        }
    }
    out = Py_BuildValue("(y#y#y#y#)", (const char *)out_stories, nstories * (Py_ssize_t)sizeof(uint32_t),
                        (const char *)out_slots, w * (Py_ssize_t)sizeof(uint32_t), (const char *)out_owner,
                        w * (Py_ssize_t)sizeof(uint32_t), (const char *)out_shared, w * (Py_ssize_t)sizeof(uint32_t));
done:
    PyMem_Free(list); PyMem_Free(lo); PyMem_Free(hi); PyMem_Free(more); PyMem_Free(q); PyMem_Free(caps); PyMem_Free(rare);
    PyMem_Free(out_stories); PyMem_Free(out_slots); PyMem_Free(out_owner); PyMem_Free(out_shared);
    buffers_release(&bs);
    Py_buffer *bufs[] = {&lb, &nb};
    for (int i = 0; i < opened; i++) PyBuffer_Release(bufs[i]);
    pending_close(&p);
    sorted_close(&m);
    return out;
}

/* ---- evidence (evidence.measure_py) --------------------------------------------------------------- */

/* buffers_take for a buffer written in place. */
static void *buffers_take_writable(Buffers *bs, PyObject *obj, Py_ssize_t itemsize, const char *what, Py_ssize_t *count) {
    if (bs->n >= (int)(sizeof bs->b / sizeof bs->b[0])) { PyErr_SetString(PyExc_RuntimeError, "too many buffers"); return NULL; }
    Py_buffer *b = &bs->b[bs->n];
    if (PyObject_GetBuffer(obj, b, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) return NULL;
    if (b->len % itemsize || (b->itemsize != itemsize && b->itemsize != 1)) {
        PyBuffer_Release(b);
        PyErr_Format(PyExc_TypeError, "%s: expected %zd-byte items", what, itemsize);
        return NULL;
    }
    *count = b->len / itemsize;
    bs->n++;
    return b->buf;
}

/* Position of ``v`` in the ascending ``a[0..n)``, or -1. */
static Py_ssize_t find_u32(const uint32_t *a, Py_ssize_t n, uint32_t v) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) { Py_ssize_t mid = (lo + hi) / 2; if (a[mid] < v) lo = mid + 1; else hi = mid; }
    return lo < n && a[lo] == v ? lo : -1;
}

static int has_u16(const uint16_t *a, Py_ssize_t n, uint16_t v) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) { Py_ssize_t mid = (lo + hi) / 2; if (a[mid] < v) lo = mid + 1; else hi = mid; }
    return lo < n && a[lo] == v;
}

/* rarity.Rarity.word_idf / bigram_idf of one hash: log(numer / (count + 1)). */
static inline double idf_of(const float *table, uint32_t mask, uint32_t h, double numer) {
    return log(numer / ((double)table[h & mask] + 1.0));
}

/* shared / sqrt(own * theirs), 0 when nothing is shared (as numpy's nan_to_num of 0/0). */
static inline double cosine(double shared, double own, double theirs) {
    return shared == 0.0 ? 0.0 : shared / sqrt(own * theirs);
}

static inline int bit(const uint64_t *bits, uint32_t v) { return (int)((bits[(v & 0xFFFF) >> 6] >> (v & 63)) & 1); }

static uint64_t sketch_bits[1 << 10], context_bits[1 << 10]; /* 65,536-bit maps, all zero between calls */

typedef struct {
    const uint32_t *head, *text, *everything, *figures;
    const uint16_t *bigrams, *subject;
    const uint8_t *units;
    Py_ssize_t nhead, ntext, neverything, nfigures, nbigrams, nsubject, nunits;
    double *head_idf, head_total, head2, bigram2, text2;
} New;

/* How the copy share is estimated (evidence.copy_share): the new article's distinct shingles and sample, and the
 * parameters (evidence.MIN_COPY_SHINGLES, NOISE_HITS, MIN_SAMPLE, SAMPLE_HITS, signature.REACH_SHIFT). */
typedef struct {
    const uint32_t *sample;
    Py_ssize_t nsample, size, min_copy, min_sample, sample_hits, reach_shift;
    double chance, noise_hits;
} Copy;

/* evidence.copy_share of one member: the larger of how much of the member the new text holds (its sketch among
 * the new shingles, ``hits`` of ``nk``), how much of the new text the member holds as the sketch tells it, and as
 * the new text's sampled hashes within the member's reach tell it (``shared`` of them found the member). */
static double copy_share(const Copy *c, Py_ssize_t hits, Py_ssize_t nk, Py_ssize_t member_size, uint32_t shared,
                         uint8_t reach) {
    double copy = 0.0;
    if (c->size >= c->min_copy && nk > 0 && member_size >= c->min_copy) {
        double inside_new = ((double)hits / (double)nk - c->chance) / (1.0 - c->chance);
        if (!(inside_new > 0.0)) inside_new = 0.0;
        double trusted = (double)hits > c->noise_hits ? ((double)hits - c->noise_hits) / (double)nk : 0.0;
        double inside_member = trusted * (double)member_size / (double)c->size;
        if (inside_member > 1.0) inside_member = 1.0;
        copy = inside_new > inside_member ? inside_new : inside_member;
    }
    /* The sampled hashes the member would have posted had it carried them: those up to its reach. */
    uint64_t bound = ((uint64_t)reach + 1) << c->reach_shift;
    Py_ssize_t lo = 0, hi = c->nsample;
    while (lo < hi) { Py_ssize_t mid = (lo + hi) / 2; if ((uint64_t)c->sample[mid] < bound) lo = mid + 1; else hi = mid; }
    if (lo >= c->min_sample && (Py_ssize_t)shared >= c->sample_hits) {
        double sampled = (double)shared / (double)lo;
        if (sampled > 1.0) sampled = 1.0;
        if (sampled > copy) copy = sampled;
    }
    return copy;
}

typedef struct {
    const Slot *records;
    Py_ssize_t nslots;
    const uint32_t *flat32;
    const uint16_t *flat16;
    Py_ssize_t n32, n16;
    const float *words, *bigram_table;
    uint32_t mask;
    double numer;
} Store;


/* A word met in a call (a member's headline or text word), looked at once: its IDF, where the new article has
 * it, and the members of each story that carry it. Members come story by story, so a word counts one story
 * at a time (``story``, ``count``) and keeps the finished ones as a chain of tallies. */
typedef struct {
    uint32_t key;
    int32_t head_at; /* position among the new headline's words, -1 if not there */
    uint8_t used, in_text, in_everything;
    double idf;
    int32_t story, count, tally;
} Word;

typedef struct { int32_t story, count, next; } Tally;

typedef struct {
    Word *table;
    uint32_t mask;
    int32_t *order; /* table positions in first-met order */
    Py_ssize_t nwords;
    Tally *tallies;
    Py_ssize_t ntallies;
} Words;

static int words_open(Words *w, Py_ssize_t values) {
    Py_ssize_t size = 64;
    while (size < 2 * values) size <<= 1;
    w->table = PyMem_Calloc(size, sizeof(Word));
    w->order = PyMem_Malloc((values + 1) * sizeof(int32_t));
    w->tallies = PyMem_Malloc((values + 1) * sizeof(Tally));
    w->mask = (uint32_t)(size - 1);
    w->nwords = w->ntallies = 0;
    if (!w->table || !w->order || !w->tallies) { PyErr_NoMemory(); return -1; }
    return 0;
}

static void words_close(Words *w) {
    PyMem_Free(w->table); PyMem_Free(w->order); PyMem_Free(w->tallies);
}

/* The entry of ``key``, made on first meeting it: a member's word the new article does not carry (the new
 * article's own words are entered first, by words_enter_new). */
static Word *word_of(Words *w, const Store *s, uint32_t key) {
    uint32_t at = (key * 0x9E3779B1u) & w->mask;
    while (w->table[at].used && w->table[at].key != key) at = (at + 1) & w->mask;
    Word *e = &w->table[at];
    if (!e->used) {
        e->used = 1;
        e->key = key;
        e->idf = idf_of(s->words, s->mask, key, s->numer);
        e->head_at = -1;
        e->story = -1;
        e->tally = -1;
        w->order[w->nwords++] = (int32_t)at;
    }
    return e;
}

/* Enters the new article's words (headline and text, sorted) with where it carries them, so that a member's
 * word is looked up once, by hash, instead of searched in three arrays. */
static void words_enter_new(Words *w, const Store *s, const New *a) {
    Py_ssize_t h = 0, x = 0;
    for (Py_ssize_t i = 0; i < a->neverything; i++) {
        uint32_t key = a->everything[i];
        Word *e = word_of(w, s, key);
        e->in_everything = 1;
        while (h < a->nhead && a->head[h] < key) h++;
        if (h < a->nhead && a->head[h] == key) e->head_at = (int32_t)h;
        while (x < a->ntext && a->text[x] < key) x++;
        e->in_text = x < a->ntext && a->text[x] == key;
    }
}

/* One more member of ``story`` carries the word (stories come in order). */
static void word_count(Words *w, Word *e, int32_t story) {
    if (e->story == story) { e->count++; return; }
    if (e->story >= 0) {
        w->tallies[w->ntallies] = (Tally){e->story, e->count, e->tally};
        e->tally = (int32_t)w->ntallies++;
    }
    e->story = story;
    e->count = 1;
}

/* Bigram IDFs met in a call, in a direct-mapped cache valid where its generation is the call's. */
#define BIGRAM_CACHE 1024
static uint16_t bigram_key[BIGRAM_CACHE];
static uint32_t bigram_generation[BIGRAM_CACHE], generation;
static double bigram_value[BIGRAM_CACHE];
static uint64_t new_bigrams[1 << 10]; /* the new headline's bigrams as bits; all zero between calls */

static inline double bigram_idf_of(const Store *s, uint16_t h) {
    uint32_t at = h & (BIGRAM_CACHE - 1);
    if (bigram_generation[at] != generation || bigram_key[at] != h) {
        bigram_generation[at] = generation;
        bigram_key[at] = h;
        bigram_value[at] = idf_of(s->bigram_table, 0xFFFF, h, s->numer);
    }
    return bigram_value[at];
}

/* The PAIR features of the new article against the member at ``slot`` (of story ``story``) into ``row``, its
 * words counted for ``story`` and the new headline words it carries marked in ``found``; -1 if its signature
 * runs past the flat arrays. */
static int pair_row(const Store *s, const New *a, Words *w, uint32_t slot, int32_t story, unsigned char *found,
                    double t, uint32_t outlet, const Copy *c, uint32_t sampled, int context_ready, double *row) {
    const Slot *r = &s->records[slot];
    Py_ssize_t off32 = r->off32, off16 = r->off16, nh = r->n_head, nw = r->n_words, nf = r->n_figures;
    Py_ssize_t nb = r->n_bigrams, ns = r->n_subject, nk = r->n_sketch;
    if (off32 + nh + nw + nf > s->n32 || off16 + nb + ns + nk > s->n16) return -1;
    const uint32_t *hv = s->flat32 + off32, *wv = hv + nh, *fv = wv + nw;
    const uint16_t *bv = s->flat16 + off16, *sv = bv + nb, *kv = sv + ns;
    double theirs = 0, shared = 0, in_head = 0, in_words = 0, in_all = 0, all = 0, top = 0;
    for (Py_ssize_t k = 0; k < nh; k++) {
        Word *e = word_of(w, s, hv[k]);
        double idf = e->idf;
        theirs += idf * idf;
        all += idf;
        if (e->head_at >= 0) {
            shared += idf * idf;
            in_head += a->head_idf[e->head_at];
            found[e->head_at] = 1;
            if (idf > top) top = idf;
        }
        if (e->in_everything) in_all += idf;
        word_count(w, e, story);
    }
    double text_theirs = 0, text_shared = 0;
    for (Py_ssize_t k = 0; k < nw; k++) {
        Word *e = word_of(w, s, wv[k]);
        if (e->head_at >= 0) {
            in_words += a->head_idf[e->head_at];
            found[e->head_at] = 1;
        }
        text_theirs += e->idf * e->idf;
        if (e->in_text) text_shared += e->idf * e->idf;
        word_count(w, e, story);
    }
    double big_theirs = 0, big_shared = 0;
    for (Py_ssize_t k = 0; k < nb; k++) {
        double idf = bigram_idf_of(s, bv[k]);
        big_theirs += idf * idf;
        if (bit(new_bigrams, bv[k])) big_shared += idf * idf;
    }
    double cover_new = a->head_total ? (in_head + in_words) / a->head_total : 0.0;
    double cover_member = all ? in_all / all : 0.0;
    Py_ssize_t hits = 0;
    if (c->size >= c->min_copy)
        for (Py_ssize_t k = 0; k < nk; k++) hits += bit(sketch_bits, kv[k]);
    double copy = copy_share(c, hits, nk, r->size, sampled, r->reach);
    int agree = 0, conflict = 0;
    for (Py_ssize_t k = 0; k < nf; k++) agree |= find_u32(a->figures, a->nfigures, fv[k]) >= 0;
    for (Py_ssize_t u = 0; u < a->nunits; u++) {
        int seen = 0, met = 0;
        for (Py_ssize_t k = 0; k < nf; k++) {
            if ((fv[k] >> 24) != a->units[u]) continue;
            seen = 1;
            met |= find_u32(a->figures, a->nfigures, fv[k]) >= 0;
        }
        conflict |= seen && !met;
    }
    int subject_conflict = 0;
    if (a->nsubject && ns && context_ready) {
        int same = 0;
        Py_ssize_t named = 0;
        for (Py_ssize_t k = 0; k < ns; k++) {
            same |= has_u16(a->subject, a->nsubject, sv[k]);
            named += bit(context_bits, sv[k]);
        }
        subject_conflict = !same && !((double)named / (double)ns >= 0.5);
    }
    uint32_t member_outlet = r->outlet;
    row[P_BIAS] = 1.0;
    row[P_HEAD_COS] = cosine(shared, a->head2, theirs);
    row[P_BIGRAM_COS] = cosine(big_shared, a->bigram2, big_theirs);
    row[P_COVER_MIN] = cover_new < cover_member ? cover_new : cover_member;
    row[P_COVER_MAX] = cover_new > cover_member ? cover_new : cover_member;
    row[P_TEXT_COS] = cosine(text_shared, a->text2, text_theirs);
    row[P_SHARED_TOP] = top / 5.0;
    row[P_COPY] = copy;
    row[P_FIGURES_AGREE] = agree;
    row[P_FIGURES_CONFLICT] = conflict;
    row[P_SUBJECT_CONFLICT] = subject_conflict;
    row[P_LOG_HOURS] = log1p(fabs((double)r->t - t) / 3600.0);
    row[P_SAME_OUTLET] = member_outlet == (outlet & 0xFFFF) && outlet != 0; /* records keep the low half */
    return 0;
}

/* The Gram matrix of the stories' centroids (k x k) and their dot products with the new article's vector, from
 * the words counted by pair_row (``members``: each story's member count); returns the vector's squared norm. */
static double centroids(const Store *s, const New *a, Words *w, const double *members, Py_ssize_t k, double min_idf,
                        double *gram, double *dots, int32_t *story_at, double *weight) {
    memset(gram, 0, k * k * sizeof(double));
    memset(dots, 0, k * sizeof(double));
    for (Py_ssize_t i = 0; i < w->nwords; i++) {
        Word *e = &w->table[w->order[i]];
        if (e->story < 0 || !(e->idf > min_idf)) continue; /* the new article's words no member carries */
        Py_ssize_t m = 0;
        story_at[m] = e->story;
        weight[m++] = (double)e->count / members[e->story] * e->idf;
        for (int32_t at = e->tally; at >= 0; at = w->tallies[at].next) {
            story_at[m] = w->tallies[at].story;
            weight[m++] = (double)w->tallies[at].count / members[w->tallies[at].story] * e->idf;
        }
        for (Py_ssize_t x = 0; x < m; x++) {
            for (Py_ssize_t y = 0; y < m; y++) gram[story_at[x] * k + story_at[y]] += weight[x] * weight[y];
            if (e->in_everything) dots[story_at[x]] += weight[x] * e->idf;
        }
    }
    double norm2 = 0.0;
    for (Py_ssize_t j = 0; j < a->neverything; j++) {
        double idf = idf_of(s->words, s->mask, a->everything[j], s->numer);
        if (idf > min_idf) norm2 += idf * idf;
    }
    return norm2;
}

static PyObject *evidence(PyObject *self, PyObject *args) {
    PyObject *cols_obj, *flat32_obj, *flat16_obj, *words_obj, *bigrams_obj, *head_obj, *hb_obj, *text_obj, *all_obj,
        *figures_obj, *units_obj, *subject_obj, *context, *shingles_obj, *sample_obj, *slots_obj, *owner_obj,
        *shared_obj;
    double numer, min_idf, t;
    Copy c = {0};
    Py_ssize_t size, k;
    unsigned long outlet;
    if (!PyArg_ParseTuple(args, "OOOOOdd(ndnnn)OOOOOOOUOOnkdOOOn", &cols_obj, &flat32_obj, &flat16_obj, &words_obj,
                          &bigrams_obj, &numer, &min_idf, &c.min_copy, &c.noise_hits, &c.min_sample, &c.sample_hits,
                          &c.reach_shift, &head_obj, &hb_obj, &text_obj, &all_obj, &figures_obj, &units_obj,
                          &subject_obj, &context, &shingles_obj, &sample_obj, &size, &outlet, &t, &slots_obj,
                          &owner_obj, &shared_obj, &k))
        return NULL;
    if (c.reach_shift < 0 || c.reach_shift > 31) { PyErr_SetString(PyExc_ValueError, "bad reach shift"); return NULL; }
    c.size = size;
    Buffers bs = {.n = 0};
    Store s;
    New a = {0};
    double *pairs = NULL, *story = NULL;
    unsigned char *found = NULL;
    int32_t *story_at = NULL;
    Words w = {0};
    PyObject *out = NULL;
    Py_ssize_t nshingles = 0, nwords = 0, nbigram_table = 0, n = 0, nowner = 0, nshared = 0;
    const uint32_t *shingles_v, *slots, *owner, *shared;
    int sketch_set = 0, context_set = 0, bigrams_set = 0;
    if (!(s.records = buffers_take(&bs, cols_obj, sizeof(Slot), "records", &s.nslots))) goto done;
    if (!(s.flat32 = buffers_take(&bs, flat32_obj, 4, "flat32", &s.n32))) goto done;
    if (!(s.flat16 = buffers_take(&bs, flat16_obj, 2, "flat16", &s.n16))) goto done;
    if (!(s.words = buffers_take(&bs, words_obj, 4, "word table", &nwords))) goto done;
    if (!(s.bigram_table = buffers_take(&bs, bigrams_obj, 4, "bigram table", &nbigram_table))) goto done;
    if (!nwords || (nwords & (nwords - 1)) || nbigram_table != 65536) {
        PyErr_SetString(PyExc_ValueError, "frequency tables of unexpected size");
        goto done;
    }
    s.mask = (uint32_t)(nwords - 1);
    s.numer = numer;
    if (!(a.head = buffers_take(&bs, head_obj, 4, "head", &a.nhead))) goto done;
    if (!(a.bigrams = buffers_take(&bs, hb_obj, 2, "bigrams", &a.nbigrams))) goto done;
    if (!(a.text = buffers_take(&bs, text_obj, 4, "text", &a.ntext))) goto done;
    if (!(a.everything = buffers_take(&bs, all_obj, 4, "everything", &a.neverything))) goto done;
    if (!(a.figures = buffers_take(&bs, figures_obj, 4, "figures", &a.nfigures))) goto done;
    if (!(a.units = buffers_take(&bs, units_obj, 1, "units", &a.nunits))) goto done;
    if (!(a.subject = buffers_take(&bs, subject_obj, 2, "subject", &a.nsubject))) goto done;
    if (!(shingles_v = buffers_take(&bs, shingles_obj, 4, "shingles", &nshingles))) goto done;
    if (!(c.sample = buffers_take(&bs, sample_obj, 4, "sample", &c.nsample))) goto done;
    if (!(slots = buffers_take(&bs, slots_obj, 4, "slots", &n))) goto done;
    if (!(owner = buffers_take(&bs, owner_obj, 4, "owner", &nowner))) goto done;
    if (!(shared = buffers_take(&bs, shared_obj, 4, "shared", &nshared))) goto done;
    if (nowner != n || nshared != n) { PyErr_SetString(PyExc_ValueError, "one owner and count per slot"); goto done; }
    if (k < 0 || k > n) { PyErr_SetString(PyExc_ValueError, "every story must have a member"); goto done; }
    for (Py_ssize_t i = 1; i < c.nsample; i++) {
        if (c.sample[i] < c.sample[i - 1]) { PyErr_SetString(PyExc_ValueError, "the sample must be ascending"); goto done; }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((Py_ssize_t)slots[i] >= s.nslots || (Py_ssize_t)owner[i] >= k) {
            PyErr_SetString(PyExc_IndexError, "slot or story out of range");
            goto done;
        }
    }
    for (Py_ssize_t i = 1; i < n; i++) {
        if (owner[i] < owner[i - 1]) { PyErr_SetString(PyExc_ValueError, "members must come story by story"); goto done; }
    }
    Py_ssize_t values = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Slot *r = &s.records[slots[i]];
        Py_ssize_t off = r->off32, len = r->n_head + r->n_words;
        values += len;
        /* Each word's frequency is a cache miss in a 4 MB table: ask for them all first, so the misses overlap. */
        for (Py_ssize_t j = 0; j < len && off + j < s.n32; j++) __builtin_prefetch(&s.words[s.flat32[off + j] & s.mask]);
        Py_ssize_t off16 = r->off16, nb = r->n_bigrams;
        for (Py_ssize_t j = 0; j < nb && off16 + j < s.n16; j++) __builtin_prefetch(&s.bigram_table[s.flat16[off16 + j]]);
    }
    if (words_open(&w, values + a.neverything) < 0) goto done;
    words_enter_new(&w, &s, &a);
    a.head_idf = PyMem_Malloc((a.nhead + 1) * sizeof(double));
    pairs = PyMem_Malloc((n * N_PAIR + 1) * sizeof(double));
    story = PyMem_Malloc((k * (k + 4) + 1) * sizeof(double));
    found = PyMem_Calloc(k * a.nhead + 1, 1);
    story_at = PyMem_Malloc((k + 1) * sizeof(int32_t));
    if (!a.head_idf || !pairs || !story || !found || !story_at) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t h = 0; h < a.nhead; h++) {
        double idf = idf_of(s.words, s.mask, a.head[h], numer);
        a.head_idf[h] = idf;
        a.head_total += idf;
        a.head2 += idf * idf;
    }
    if (++generation == 0) { memset(bigram_generation, 0, sizeof bigram_generation); generation = 1; }
    for (Py_ssize_t h = 0; h < a.nbigrams; h++) {
        double idf = bigram_idf_of(&s, a.bigrams[h]);
        a.bigram2 += idf * idf;
        new_bigrams[a.bigrams[h] >> 6] |= 1ull << (a.bigrams[h] & 63);
    }
    bigrams_set = 1;
    for (Py_ssize_t h = 0; h < a.ntext; h++) {
        double idf = idf_of(s.words, s.mask, a.text[h], numer);
        a.text2 += idf * idf;
    }
    if (size >= c.min_copy) {
        for (Py_ssize_t i = 0; i < nshingles; i++) sketch_bits[(shingles_v[i] & 0xFFFF) >> 6] |= 1ull << (shingles_v[i] & 63);
        sketch_set = 1;
    }
    if (a.nsubject) {
        if (pair_bits(context, context_bits) < 0) goto done;
        context_set = 1;
    }
    c.chance = (double)nshingles / 65536.0;
    if (c.chance > 0.5) c.chance = 0.5;
    double *cover = story, *members = story + k, *gram = story + 2 * k, *dots = story + 2 * k + k * k;
    double *weight = dots + k;
    memset(members, 0, k * sizeof(double));
    for (Py_ssize_t i = 0; i < n; i++) {
        members[owner[i]] += 1.0;
        if (pair_row(&s, &a, &w, slots[i], (int32_t)owner[i], found + owner[i] * a.nhead, t, (uint32_t)outlet, &c,
                     shared[i], context_set, pairs + i * N_PAIR) < 0) {
            PyErr_SetString(PyExc_ValueError, "a signature runs past the index's flat arrays");
            goto done;
        }
    }
    for (Py_ssize_t st = 0; st < k; st++) {
        double mass = 0.0;
        for (Py_ssize_t h = 0; h < a.nhead; h++) if (found[st * a.nhead + h]) mass += a.head_idf[h];
        cover[st] = a.head_total ? mass / a.head_total : 0.0;
    }
    double norm2 = centroids(&s, &a, &w, members, k, min_idf, gram, dots, story_at, weight);
    out = Py_BuildValue("(y#y#y#y#d)", (const char *)pairs, n * N_PAIR * (Py_ssize_t)sizeof(double),
                        (const char *)cover, k * (Py_ssize_t)sizeof(double), (const char *)gram,
                        k * k * (Py_ssize_t)sizeof(double), (const char *)dots, k * (Py_ssize_t)sizeof(double), norm2);
done:
    if (sketch_set) memset(sketch_bits, 0, sizeof sketch_bits);
    if (context_set) memset(context_bits, 0, sizeof context_bits);
    if (bigrams_set) for (Py_ssize_t h = 0; h < a.nbigrams; h++) new_bigrams[a.bigrams[h] >> 6] = 0;
    words_close(&w);
    PyMem_Free(a.head_idf); PyMem_Free(pairs); PyMem_Free(story); PyMem_Free(found); PyMem_Free(story_at);
    buffers_release(&bs);
    return out;
}


/* ---- signature (signature.choose_encoded) and index insertion (index.Index.add) ------------------------ */

/* signature._rarest: the ``cap`` hashes of lowest frequency (ties by value), or all of them in their given
 * (ascending) order when they fit; written to ``out``, returns how many. ``scratch`` holds ``n`` keys. */
static Py_ssize_t rarest(const uint32_t *h, Py_ssize_t n, Py_ssize_t cap, const float *table, uint32_t mask,
                         uint64_t *scratch, uint32_t *out) {
    if (n <= cap) { memcpy(out, h, n * sizeof(uint32_t)); return n; }
    for (Py_ssize_t i = 0; i < n; i++) scratch[i] = rare_key(table[h[i] & mask], h[i]);
    Py_ssize_t kept = smallest_u64(scratch, n, cap, scratch); /* in place: kept ones only move left */
    for (Py_ssize_t i = 0; i < kept; i++) out[i] = (uint32_t)scratch[i];
    return kept;
}

/* signature.choose_encoded's parameters: the caps of the article's regime, then the shared ones. */
enum { K_HEAD, K_WORDS, K_BIGRAMS, K_FIGURES, K_SUBJECT, K_SKETCH, K_COMMON_SHINGLE, K_POST_HEAD, K_POST_WORDS, K_SALT,
       K_VERSION, K_SAMPLE_CAP, K_REACH_SHIFT, N_K };

/* The recorded signature's header (signature._HEADER, little-endian): version u8, t u32, outlet u32, size u16,
 * flags u8, then 12 u16 lengths: head, words, figures, sketch, keys, counted words, pool (uint32 arrays, in that
 * order), bigrams, subject, counted bigrams (uint16 arrays), the sample's reach (signature.sample_reach), one
 * unused. */
#define HEADER_SIZE 36
enum { L_HEAD, L_WORDS, L_FIGURES, L_SKETCH, L_KEYS, L_COUNTED, L_POOL, L_BIGRAMS, L_SUBJECT, L_COUNTED_BIGRAMS, N_L };
#define L_REACH N_L

static void put_u16(unsigned char *p, uint16_t v) { p[0] = v & 0xFF; p[1] = v >> 8; }
static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (v >> (8 * i)) & 0xFF; }
static uint16_t get_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* signature.choose_encoded: encode(choose(features, t, rarity)). */
static PyObject *choose(PyObject *self, PyObject *args) {
    PyObject *head_obj, *text_obj, *all_obj, *bigrams_obj, *figures_obj, *head_figures_obj, *subject_obj, *pool_obj,
        *sample_obj, *words_obj, *bigram_table_obj, *shingle_table_obj, *params;
    unsigned long t, outlet;
    Py_ssize_t size;
    int flags;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOkkniO!", &head_obj, &text_obj, &all_obj, &bigrams_obj, &figures_obj,
                          &head_figures_obj, &subject_obj, &pool_obj, &sample_obj, &words_obj, &bigram_table_obj,
                          &shingle_table_obj, &t, &outlet, &size, &flags, &PyTuple_Type, &params))
        return NULL;
    Py_ssize_t k[N_K];
    if (PyTuple_GET_SIZE(params) != N_K) { PyErr_SetString(PyExc_ValueError, "unexpected parameters"); return NULL; }
    for (int i = 0; i < N_K; i++) {
        k[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(params, i));
        if (k[i] == -1 && PyErr_Occurred()) return NULL;
        if (k[i] < 0 || (i != K_SALT && k[i] > 4096) || (i == K_REACH_SHIFT && k[i] > 31)) {
            PyErr_SetString(PyExc_ValueError, "bad parameter");
            return NULL;
        }
    }
    Buffers bs = {.n = 0};
    PyObject *out = NULL;
    uint64_t *scratch = NULL;
    uint32_t *u32 = NULL;
    uint16_t *u16 = NULL;
    Py_ssize_t nh, nt, na, nb, nf, nhf, ns, np, nsa, nw, nbt, nst;
    const uint32_t *head, *text, *all, *figures, *head_figures, *pool, *sample;
    const uint16_t *bigrams, *subject;
    const float *words, *bigram_table, *shingle_table;
    if (!(head = buffers_take(&bs, head_obj, 4, "head", &nh)) || !(text = buffers_take(&bs, text_obj, 4, "text", &nt)) ||
        !(all = buffers_take(&bs, all_obj, 4, "everything", &na)) ||
        !(bigrams = buffers_take(&bs, bigrams_obj, 2, "bigrams", &nb)) ||
        !(figures = buffers_take(&bs, figures_obj, 4, "figures", &nf)) ||
        !(head_figures = buffers_take(&bs, head_figures_obj, 4, "head figures", &nhf)) ||
        !(subject = buffers_take(&bs, subject_obj, 2, "subject", &ns)) ||
        !(pool = buffers_take(&bs, pool_obj, 4, "pool", &np)) || !(sample = buffers_take(&bs, sample_obj, 4, "sample", &nsa)) ||
        !(words = buffers_take(&bs, words_obj, 4, "word table", &nw)) ||
        !(bigram_table = buffers_take(&bs, bigram_table_obj, 4, "bigram table", &nbt)) ||
        !(shingle_table = buffers_take(&bs, shingle_table_obj, 4, "shingle table", &nst)))
        goto done;
    if (!nw || (nw & (nw - 1)) || nbt != 65536 || !nst || (nst & (nst - 1))) {
        PyErr_SetString(PyExc_ValueError, "frequency tables of unexpected size");
        goto done;
    }
    if (na > 65535 || nb > 65535 || np > 65535 || nsa > 65535) { PyErr_SetString(PyExc_ValueError, "too many values"); goto done; }
    uint32_t wmask = (uint32_t)(nw - 1), smask = (uint32_t)(nst - 1);
    Py_ssize_t most = nh > nt ? nh : nt;
    if (nb > most) most = nb;
    scratch = PyMem_Malloc((most + 1) * sizeof(uint64_t));
    /* Room for every array at its largest: at most what it is chosen from. */
    u32 = PyMem_Malloc((nh + nt + nf + nhf + np + nh + nt + nsa + na + np + 1) * sizeof(uint32_t));
    u16 = PyMem_Malloc((nb + ns + nb + 1) * sizeof(uint16_t));
    if (!scratch || !u32 || !u16) { PyErr_NoMemory(); goto done; }
    Py_ssize_t len[N_L + 2] = {0};
    uint32_t *w = u32;
    len[L_HEAD] = rarest(head, nh, k[K_HEAD], words, wmask, scratch, w);
    w += len[L_HEAD];
    len[L_WORDS] = rarest(text, nt, k[K_WORDS], words, wmask, scratch, w);
    w += len[L_WORDS];
    /* Figures: the headline's first (ascending), then the others (ascending), at most the cap. */
    Py_ssize_t f = 0;
    for (Py_ssize_t i = 0; i < nhf && f < k[K_FIGURES]; i++) w[f++] = head_figures[i];
    for (Py_ssize_t i = 0; i < nf && f < k[K_FIGURES]; i++) {
        int in_head = 0;
        for (Py_ssize_t j = 0; j < nhf && !in_head; j++) in_head = head_figures[j] == figures[i];
        if (!in_head) w[f++] = figures[i];
    }
    len[L_FIGURES] = f;
    w += f;
    Py_ssize_t sk = 0;
    for (Py_ssize_t i = 0; i < np && sk < k[K_SKETCH]; i++)
        if (shingle_table[pool[i] & smask] < (float)k[K_COMMON_SHINGLE]) w[sk++] = pool[i];
    len[L_SKETCH] = sk;
    w += sk;
    Py_ssize_t nk = rarest(head, nh, k[K_POST_HEAD], words, wmask, scratch, w);
    nk += rarest(text, nt, k[K_POST_WORDS], words, wmask, scratch, w + nk);
    uint32_t largest = 0;
    for (Py_ssize_t i = 0; i < nsa; i++) {
        if (sample[i] > largest) largest = sample[i];
        w[nk++] = sample[i] ^ (uint32_t)k[K_SALT];
    }
    len[L_KEYS] = nk;
    len[L_REACH] = nsa < k[K_SAMPLE_CAP] ? 255 : (largest >> k[K_REACH_SHIFT] < 255 ? largest >> k[K_REACH_SHIFT] : 255);
    w += nk;
    memcpy(w, all, na * sizeof(uint32_t));
    len[L_COUNTED] = na;
    w += na;
    memcpy(w, pool, np * sizeof(uint32_t));
    len[L_POOL] = np;
    w += np;
    uint16_t *v = u16;
    /* rarest reads uint32: widen the bigrams */
    uint32_t *b32 = PyMem_Malloc((2 * nb + 1) * sizeof(uint32_t)), *bout = b32 + nb;
    if (!b32) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < nb; i++) b32[i] = bigrams[i];
    len[L_BIGRAMS] = rarest(b32, nb, k[K_BIGRAMS], bigram_table, 0xFFFF, scratch, bout);
    for (Py_ssize_t i = 0; i < len[L_BIGRAMS]; i++) v[i] = (uint16_t)bout[i];
    PyMem_Free(b32);
    v += len[L_BIGRAMS];
    len[L_SUBJECT] = ns < k[K_SUBJECT] ? ns : k[K_SUBJECT];
    memcpy(v, subject, len[L_SUBJECT] * sizeof(uint16_t));
    v += len[L_SUBJECT];
    memcpy(v, bigrams, nb * sizeof(uint16_t));
    len[L_COUNTED_BIGRAMS] = nb;
    v += nb;
    Py_ssize_t n32 = w - u32, n16 = v - u16;
    out = PyBytes_FromStringAndSize(NULL, HEADER_SIZE + 4 * n32 + 2 * n16);
    if (!out) goto done;
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
    p[0] = (unsigned char)k[K_VERSION];
    put_u32(p + 1, (uint32_t)t);
    put_u32(p + 5, (uint32_t)outlet);
    put_u16(p + 9, (uint16_t)(size < 65535 ? size : 65535));
    p[11] = (unsigned char)flags;
    for (int i = 0; i < N_L + 2; i++) put_u16(p + 12 + 2 * i, (uint16_t)len[i]);
    for (Py_ssize_t i = 0; i < n32; i++) put_u32(p + HEADER_SIZE + 4 * i, u32[i]);
    for (Py_ssize_t i = 0; i < n16; i++) put_u16(p + HEADER_SIZE + 4 * n32 + 2 * i, u16[i]);
done:
    PyMem_Free(scratch); PyMem_Free(u32); PyMem_Free(u16);
    buffers_release(&bs);
    return out;
}

/* rarity.Rarity.count on one table: each distinct counter the hashes fall on gains 1 (as numpy's fancy-index
 * += does: a counter hit twice by one article counts once). Counters already counted are remembered in a small
 * hash set of ``room`` entries (a power of two, at least twice ``n``). */
static void count_into(float *table, uint32_t mask, const uint32_t *h, Py_ssize_t n, uint32_t *seen, Py_ssize_t room) {
    memset(seen, 0xFF, room * sizeof(uint32_t)); /* 0xFFFFFFFF: empty (never a counter: tables hold 2**31 at most) */
    uint32_t smask = (uint32_t)(room - 1);
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t c = h[i] & mask, at = (c * 0x9E3779B1u) & smask;
        while (seen[at] != 0xFFFFFFFFu && seen[at] != c) at = (at + 1) & smask;
        if (seen[at] == c) continue;
        seen[at] = c;
        table[c] += 1.0f;
    }
}

/* index.Index.add of an encoded signature: one record at ``n`` (``records`` has room), the signature's arrays at
 * ``n32`` and ``n16`` of the flat arrays (room for 3 x 255 values each), the story arrays updated, its words
 * counted and its keys posted. The caller has decayed the frequencies to its time and checked there is room in
 * the postings buffer. Returns (keys posted, new n32, new n16). */
static PyObject *put(PyObject *self, PyObject *args) {
    Py_buffer blob;
    PyObject *records_obj, *flat32_obj, *flat16_obj, *last_obj, *first_obj, *count_obj, *words_obj, *bigrams_obj,
        *shingles_obj, *pending;
    Py_ssize_t n, n32, n16, story, version;
    if (!PyArg_ParseTuple(args, "y*OnOnOnOOOnOOOOn", &blob, &records_obj, &n, &flat32_obj, &n32, &flat16_obj, &n16,
                          &last_obj, &first_obj, &count_obj, &story, &words_obj, &bigrams_obj, &shingles_obj, &pending,
                          &version))
        return NULL;
    Pending p = {.opened = 0};
    Buffers bs = {.n = 0};
    PyObject *out = NULL;
    const unsigned char *b = blob.buf;
    Py_ssize_t len[N_L + 2], at[N_L], total32 = 0, total16 = 0;
    Py_ssize_t room, room32, room16, nstories, nfirst, ncount, nw, nbt, nst;
    if (blob.len < HEADER_SIZE) { PyErr_SetString(PyExc_ValueError, "signature truncated"); goto done; }
    if (b[0] != version) { PyErr_Format(PyExc_ValueError, "signature version %d, expected %zd", b[0], version); goto done; }
    for (int i = 0; i < N_L + 2; i++) len[i] = get_u16(b + 12 + 2 * i);
    if (len[L_REACH] > 255) { PyErr_SetString(PyExc_ValueError, "signature sample reach is not a byte"); goto done; }
    for (int i = 0; i < N_L; i++) {
        at[i] = i < L_BIGRAMS ? total32 : total16;
        if (i < L_BIGRAMS) total32 += len[i]; else total16 += len[i];
    }
    if (blob.len < HEADER_SIZE + 4 * total32 + 2 * total16) { PyErr_SetString(PyExc_ValueError, "signature truncated"); goto done; }
    if (len[L_HEAD] > 255 || len[L_WORDS] > 255 || len[L_FIGURES] > 255 || len[L_BIGRAMS] > 255 ||
        len[L_SUBJECT] > 255 || len[L_SKETCH] > 255) { PyErr_SetString(PyExc_ValueError, "signature too long"); goto done; }
    Slot *records = (Slot *)buffers_take_writable(&bs, records_obj, sizeof(Slot), "records", &room);
    uint32_t *flat32 = (uint32_t *)buffers_take_writable(&bs, flat32_obj, 4, "flat32", &room32);
    uint16_t *flat16 = (uint16_t *)buffers_take_writable(&bs, flat16_obj, 2, "flat16", &room16);
    int32_t *last = (int32_t *)buffers_take_writable(&bs, last_obj, 4, "last", &nstories);
    uint32_t *first = (uint32_t *)buffers_take_writable(&bs, first_obj, 4, "first", &nfirst);
    uint32_t *count = (uint32_t *)buffers_take_writable(&bs, count_obj, 4, "members_n", &ncount);
    float *words = (float *)buffers_take_writable(&bs, words_obj, 4, "word table", &nw);
    float *bigram_table = (float *)buffers_take_writable(&bs, bigrams_obj, 4, "bigram table", &nbt);
    float *shingle_table = (float *)buffers_take_writable(&bs, shingles_obj, 4, "shingle table", &nst);
    if (!records || !flat32 || !flat16 || !last || !first || !count || !words || !bigram_table || !shingle_table) goto done;
    if (n < 0 || n >= room || n >= INT32_MAX || n32 < 0 || n32 + len[L_HEAD] + len[L_WORDS] + len[L_FIGURES] > room32 ||
        n16 < 0 || n16 + len[L_BIGRAMS] + len[L_SUBJECT] + len[L_SKETCH] > room16 || n32 > UINT32_MAX - 3 * 255 ||
        n16 > UINT32_MAX - 3 * 255) {
        PyErr_SetString(PyExc_ValueError, "no room in the index's arrays");
        goto done;
    }
    if (nfirst != nstories || ncount != nstories || story < 0 || story >= nstories || !nw || (nw & (nw - 1)) ||
        nbt != 65536 || !nst || (nst & (nst - 1))) {
        PyErr_SetString(PyExc_ValueError, "story arrays or frequency tables of unexpected shape");
        goto done;
    }
    if (pending_open(&p, pending, 1) < 0) goto done;
    if (p.n + len[L_KEYS] > p.room) { PyErr_SetString(PyExc_OverflowError, "postings buffer full: merge first"); goto done; }
    const unsigned char *a32 = b + HEADER_SIZE, *a16 = a32 + 4 * total32;
    uint32_t t = get_u32(b + 1);
    records[n] = (Slot){.t = t, .story = (int32_t)story, .prev = last[story], .off32 = (uint32_t)n32,
                        .off16 = (uint32_t)n16, .outlet = (uint16_t)get_u32(b + 5), .size = get_u16(b + 9),
                        .n_head = (uint8_t)len[L_HEAD], .n_words = (uint8_t)len[L_WORDS],
                        .n_figures = (uint8_t)len[L_FIGURES], .n_bigrams = (uint8_t)len[L_BIGRAMS],
                        .n_subject = (uint8_t)len[L_SUBJECT], .n_sketch = (uint8_t)len[L_SKETCH], .flags = b[11],
                        .reach = (uint8_t)len[L_REACH]};
    /* Flat arrays: headline words, text words, figures (uint32); bigrams, subject, sketch's low halves (uint16). */
    for (int i = L_HEAD; i <= L_FIGURES; i++)
        for (Py_ssize_t j = 0; j < len[i]; j++) flat32[n32++] = get_u32(a32 + 4 * (at[i] + j));
    for (int i = L_BIGRAMS; i <= L_SUBJECT; i++)
        for (Py_ssize_t j = 0; j < len[i]; j++) flat16[n16++] = get_u16(a16 + 2 * (at[i] + j));
    for (Py_ssize_t j = 0; j < len[L_SKETCH]; j++) flat16[n16++] = (uint16_t)get_u32(a32 + 4 * (at[L_SKETCH] + j));
    last[story] = (int32_t)n;
    if (t < first[story]) first[story] = t;
    count[story] += 1;
    /* The frequencies: its words, bigrams and smallest shingles, each counter once. */
    Py_ssize_t most = len[L_COUNTED] > len[L_POOL] ? len[L_COUNTED] : len[L_POOL], seen_room = 16;
    if (len[L_COUNTED_BIGRAMS] > most) most = len[L_COUNTED_BIGRAMS];
    while (seen_room < 2 * most) seen_room <<= 1;
    uint32_t *h = PyMem_Malloc((most + seen_room + 1) * sizeof(uint32_t)), *seen = h + most;
    if (!h) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t j = 0; j < len[L_COUNTED]; j++) h[j] = get_u32(a32 + 4 * (at[L_COUNTED] + j));
    count_into(words, (uint32_t)(nw - 1), h, len[L_COUNTED], seen, seen_room);
    for (Py_ssize_t j = 0; j < len[L_COUNTED_BIGRAMS]; j++) h[j] = get_u16(a16 + 2 * (at[L_COUNTED_BIGRAMS] + j));
    count_into(bigram_table, 0xFFFF, h, len[L_COUNTED_BIGRAMS], seen, seen_room);
    for (Py_ssize_t j = 0; j < len[L_POOL]; j++) h[j] = get_u32(a32 + 4 * (at[L_POOL] + j));
    count_into(shingle_table, (uint32_t)(nst - 1), h, len[L_POOL], seen, seen_room);
    PyMem_Free(h);
    for (Py_ssize_t j = 0; j < len[L_KEYS]; j++) pending_put(&p, get_u32(a32 + 4 * (at[L_KEYS] + j)), (uint32_t)n);
    out = Py_BuildValue("(nnn)", len[L_KEYS], n32, n16);
done:
    pending_close(&p);
    buffers_release(&bs);
    PyBuffer_Release(&blob);
    return out;
}

/* ---- decision (decision.probabilities) --------------------------------------------------------------- */

/* decision.probabilities: each candidate story's probability from its members' PAIR rows (``owner``: story
 * position, story by story) and its story-level signals, with the regime's pair and story weights. */
static PyObject *probabilities(PyObject *self, PyObject *args) {
    PyObject *pairs_obj, *owner_obj, *cover_obj, *dots_obj, *gram_obj, *age_obj, *size_obj, *pair_w, *story_w;
    double norm2, cap;
    Py_ssize_t agree_k;
    int single;
    if (!PyArg_ParseTuple(args, "OOOOOdOOO!O!dnp", &pairs_obj, &owner_obj, &cover_obj, &dots_obj, &gram_obj, &norm2,
                          &age_obj, &size_obj, &PyTuple_Type, &pair_w, &PyTuple_Type, &story_w, &cap, &agree_k, &single))
        return NULL;
    if (PyTuple_GET_SIZE(pair_w) != N_PAIR || PyTuple_GET_SIZE(story_w) != 8 || agree_k < 1 || agree_k > 64) {
        PyErr_SetString(PyExc_ValueError, "unexpected weights");
        return NULL;
    }
    double pw[N_PAIR], sw[8];
    for (int i = 0; i < N_PAIR; i++) if ((pw[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(pair_w, i))) == -1.0 && PyErr_Occurred()) return NULL;
    for (int i = 0; i < 8; i++) if ((sw[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(story_w, i))) == -1.0 && PyErr_Occurred()) return NULL;
    Buffers bs = {.n = 0};
    PyObject *out = NULL;
    double *logits = NULL, *p = NULL;
    Py_ssize_t np_, n, k, nd, ng, na, ns;
    const double *pairs, *cover, *dots, *gram, *age, *size;
    const uint32_t *owner;
    if (!(pairs = buffers_take(&bs, pairs_obj, 8, "pairs", &np_)) || !(owner = buffers_take(&bs, owner_obj, 4, "owner", &n)) ||
        !(cover = buffers_take(&bs, cover_obj, 8, "cover", &k)) || !(dots = buffers_take(&bs, dots_obj, 8, "dots", &nd)) ||
        !(gram = buffers_take(&bs, gram_obj, 8, "gram", &ng)) || !(age = buffers_take(&bs, age_obj, 8, "age", &na)) ||
        !(size = buffers_take(&bs, size_obj, 8, "size", &ns)))
        goto done;
    if (np_ != n * N_PAIR || nd != k || ng != k * k || na != k || ns != k) { PyErr_SetString(PyExc_ValueError, "shapes differ"); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((Py_ssize_t)owner[i] >= k || (i && owner[i] < owner[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "members must come story by story");
            goto done;
        }
    }
    logits = PyMem_Malloc((n + 1) * sizeof(double));
    p = PyMem_Malloc((k + 1) * sizeof(double));
    if (!logits || !p) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        double z = 0.0;
        for (int j = 0; j < N_PAIR; j++) z += pairs[i * N_PAIR + j] * pw[j];
        logits[i] = z < -cap ? -cap : z > cap ? cap : z;
    }
    for (Py_ssize_t s = 0, i = 0; s < k; s++) {
        Py_ssize_t start = i;
        while (i < n && owner[i] == (uint32_t)s) i++;
        Py_ssize_t m = i - start, agree = 0;
        for (Py_ssize_t x = start + 1; x < i; x++) { /* descending; a story compares a few members */
            double v = logits[x];
            Py_ssize_t y = x;
            for (; y > start && logits[y - 1] < v; y--) logits[y] = logits[y - 1];
            logits[y] = v;
        }
        double top = 0.0;
        for (Py_ssize_t j = 0; j < agree_k; j++) top += j < m ? logits[start + j] : -cap;
        for (Py_ssize_t j = 0; j < m; j++) agree += logits[start + j] > 0;
        double own = gram[s * k + s];
        double centroid = dots[s] > 0 ? dots[s] / sqrt(own * norm2) : 0.0;
        double row[8] = {1.0, m ? logits[start] : -cap, top / (double)agree_k, cover[s], centroid, log1p(age[s]),
                         log(size[s] > 1.0 ? size[s] : 1.0), m ? (double)agree / (double)m : 0.0};
        double z = 0.0;
        if (single && size[s] <= 1.0) z = row[1]; /* a story of one member is that member: its pair score */
        else for (int j = 0; j < 8; j++) z += sw[j] * row[j];
        z = z < -30.0 ? -30.0 : z > 30.0 ? 30.0 : z;
        p[s] = 1.0 / (1.0 + exp(-z));
    }
    out = PyBytes_FromStringAndSize((const char *)p, k * (Py_ssize_t)sizeof(double));
done:
    PyMem_Free(logits); PyMem_Free(p);
    buffers_release(&bs);
    return out;
}

/* ---- memory ---------------------------------------------------------------------------------------- */

/* Give free heap pages back to the OS. The index replaces arrays of tens of megabytes when it merges or
 * compacts; glibc keeps the freed space resident otherwise. */
static PyObject *release_memory(PyObject *self, PyObject *noargs) {
#ifdef __GLIBC__
    return PyBool_FromLong(malloc_trim(0));
#else
    Py_RETURN_FALSE;
#endif
}

/* ---- module --------------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"shingles", shingles, METH_VARARGS,
     "shingles(text, pool, below, sample, passage_below) -> (distinct uint32 hashes in first-seen order, the pool "
     "smallest ascending, the sample smallest below ``below`` ascending, all below ``passage_below`` ascending) as "
     "bytes: shingles.shingle_hashes_py."},
    {"pending_add", pending_add, METH_VARARGS,
     "pending_add(pending, keys, value) -> count: postings.Postings.add into the buffer of recent additions."},
    {"find", find, METH_VARARGS,
     "find(low_keys, vals, starts, pending, head, text, sample, word_table, common, long, times, story, prev, last, "
     "members_n, t, window, params) -> (stories, slots, owner) as uint32 bytes: candidates.find."},
    {"choose", choose, METH_VARARGS,
     "choose(head, text, everything, bigrams, figures, head_figures, subject, pool, sample, word_table, bigram_table, "
     "shingle_table, t, outlet, size, flags, params) -> bytes: signature.choose_encoded."},
    {"put", put, METH_VARARGS,
     "put(signature, records, n, flat32, n32, flat16, n16, last, first, members_n, story, word_table, bigram_table, "
     "shingle_table, pending) -> (keys posted, n32, n16): index.Index.add of an encoded signature."},
    {"postings_merge", postings_merge, METH_VARARGS,
     "postings_merge(low_keys, vals, starts, pending, out_low_keys, out_vals, out_starts) -> entries written: "
     "postings.Postings.merge into preallocated arrays."},
    {"evidence", evidence, METH_VARARGS,
     "evidence(records, flat32, flat16, word_table, bigram_table, numer, centroid_min_idf, (min_copy, noise_hits, "
     "min_sample, sample_hits, reach_shift), head, bigrams, text, everything, figures, units, subject, context, "
     "shingles, sample, size, outlet, t, slots, owner, shared, stories) -> "
     "(pairs, cover, gram, dots as float64 bytes, norm2): evidence.measure_py."},
    {"word_sets", word_sets, METH_VARARGS,
     "word_sets(headline, cut, text, cut) -> (head, bigrams, text, everything) as sorted bytes (uint32; bigrams "
     "uint16): features.word_arrays of normalised texts."},
    {"probabilities", probabilities, METH_VARARGS,
     "probabilities(pairs, owner, cover, dots, gram, norm2, age, size, pair_weights, story_weights, cap, agree_k, "
     "single) -> "
     "float64 bytes: decision.probabilities."},
    {"figures", figures, METH_VARARGS,
     "figures(headline, lead) -> (headline figures, all figures) as sorted uint32 bytes: features.figure_arrays of "
     "normalised texts."},
    {"release_memory", release_memory, METH_NOARGS,
     "release_memory() -> bool: malloc_trim(0) on glibc (True if memory was given back), else False."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_core", "Compiled twins of grouping's hot loops.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__core(void) {
    crc_init();
    if (particles_init() < 0 || units_init() < 0) return NULL;
    unit_map_init();
    return PyModule_Create(&module);
}
