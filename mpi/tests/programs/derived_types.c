/* SPDX-License-Identifier: Apache-2.0
 * Derived datatypes with checked data (issue 5 coverage): every constructor (contiguous, vector,
 * hvector, indexed, hindexed, indexed_block, hindexed_block, struct, subarray in C and Fortran
 * order, resized, dup), nested types, negative displacements, MPI_BOTTOM with absolute addresses
 * (MPI_Get_address), in Send/Recv, Sendrecv, Isend/Irecv (a type freed while its receive is
 * pending), Bcast, Gather, Allgather. (Open MPI refuses predefined ops on derived datatypes:
 * MPI_ERR_OP, so none here.)
 * Rank 0 prints every type's size/lb/extent/true bounds once; every rank prints one line per
 * step with a checksum of its whole receive buffers, gaps included (a receive must not touch
 * them): run_mpi_test.py compares the lines with Open MPI's own run. Explicit checks (a matrix
 * column, struct fields, halo cells) print FAIL; the last line is "rank R PASS".
 * Usage: derived_types [STEPS] [STEP_US] */
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank, size, fails;
#define CHECK(cond, ...)              \
  do {                                \
    if (!(cond)) {                    \
      printf("rank %d FAIL: ", rank); \
      printf(__VA_ARGS__);            \
      printf("\n");                   \
      fails++;                        \
    }                                 \
  } while (0)

static unsigned long long hash;
static void mix_bytes(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) hash = (hash ^ b[i]) * 0x100000001b3ULL;
}

static void show(const char *name, MPI_Datatype t) {
  int s;
  MPI_Aint lb, ext, tlb, text;
  MPI_Type_size(t, &s);
  MPI_Type_get_extent(t, &lb, &ext);
  MPI_Type_get_true_extent(t, &tlb, &text);
  if (rank == 0) printf("type %-10s size %d lb %ld extent %ld true_lb %ld true_extent %ld\n", name, s, (long)lb, (long)ext, (long)tlb, (long)text);
}

struct particle {
  char kind;
  double pos[3];
  int id;
  short flags;
};

#define ROWS 6
#define COLS 5
#define HN 8 /* halo array: HN x HM with a halo of 1 */
#define HM 10

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int steps = argc > 1 ? atoi(argv[1]) : 4;
  int step_us = argc > 2 ? atoi(argv[2]) : 0;
  int next = (rank + 1) % size, prev = (rank + size - 1) % size;

  /* The types, made once. */
  MPI_Datatype contig, column, hvec, indexed, hindexed, iblock, hiblock, particle_t, particle_r, subC, subF,
      halo_col, vec_of_struct, resized_neg, dup_t, sum_t, minloc_t, nested;
  MPI_Type_contiguous(3, MPI_INT, &contig);
  MPI_Type_vector(ROWS, 1, COLS, MPI_DOUBLE, &column);           /* a column of a ROWSxCOLS matrix */
  MPI_Type_create_hvector(3, 2, 24, MPI_SHORT, &hvec);
  int ibl[3] = {2, 1, 3}, idis[3] = {7, 0, 3};
  MPI_Type_indexed(3, ibl, idis, MPI_INT, &indexed);             /* type-map order != memory order */
  int hbl[2] = {1, 2};
  MPI_Aint hdis[2] = {24, 0};
  MPI_Type_create_hindexed(2, hbl, hdis, MPI_DOUBLE, &hindexed);
  int ibd[3] = {4, 0, 8};
  MPI_Type_create_indexed_block(3, 2, ibd, MPI_INT, &iblock);
  MPI_Aint hbd[2] = {12, -4};                                    /* a negative displacement */
  MPI_Type_create_hindexed_block(2, 1, hbd, MPI_INT, &hiblock);
  int pbl[4] = {1, 3, 1, 1};
  MPI_Aint pdis[4] = {offsetof(struct particle, kind), offsetof(struct particle, pos), offsetof(struct particle, id),
                      offsetof(struct particle, flags)};
  MPI_Datatype ptypes[4] = {MPI_CHAR, MPI_DOUBLE, MPI_INT, MPI_SHORT};
  MPI_Type_create_struct(4, pbl, pdis, ptypes, &particle_t);     /* a struct with gaps */
  MPI_Type_create_resized(particle_t, 0, sizeof(struct particle), &particle_r);
  int sizes[2] = {HN, HM}, sub[2] = {HN - 2, 1}, start[2] = {1, HM - 2};
  MPI_Type_create_subarray(2, sizes, sub, start, MPI_ORDER_C, MPI_INT, &subC);   /* last interior column */
  int fsizes[2] = {HM, HN}, fsub[2] = {1, HN - 2}, fstart[2] = {1, 1};
  MPI_Type_create_subarray(2, fsizes, fsub, fstart, MPI_ORDER_FORTRAN, MPI_INT, &subF); /* first interior column */
  int hsizes[2] = {HN, HM}, hsub[2] = {HN - 2, 1}, hstart[2] = {1, 0};
  MPI_Type_create_subarray(2, hsizes, hsub, hstart, MPI_ORDER_C, MPI_INT, &halo_col);   /* the left halo */
  MPI_Type_vector(2, 1, 2, particle_r, &vec_of_struct);         /* nested: every other particle */
  MPI_Type_create_resized(MPI_INT, -8, 16, &resized_neg);
  MPI_Type_contiguous(2, resized_neg, &nested);                  /* nested resized, lb < 0 */
  MPI_Type_dup(column, &dup_t);
  MPI_Type_contiguous(4, MPI_DOUBLE, &sum_t);
  MPI_Type_contiguous(2, MPI_DOUBLE_INT, &minloc_t);
  MPI_Datatype all[] = {contig, column, hvec, indexed, hindexed, iblock, hiblock, particle_t, particle_r, subC, subF,
                        halo_col, vec_of_struct, resized_neg, nested, dup_t, sum_t, minloc_t};
  const char *names[] = {"contig", "column", "hvector", "indexed", "hindexed", "iblock", "hiblock", "struct", "struct_r",
                         "subC", "subF", "halo", "vecstruct", "resized", "nested", "dup", "sum4", "minloc2"};
  for (int i = 0; i < (int)(sizeof all / sizeof all[0]); i++) {
    MPI_Type_commit(&all[i]);
    show(names[i], all[i]);
  }

  for (int step = 0; step < steps; step++) {
    hash = 14695981039346656037ULL;
    int seed = rank * 1000 + step * 7;
    int from_seed = prev * 1000 + step * 7;

    /* 1. Send/Recv of every simple type: a 64-int source/target with -1 in the gaps. */
    MPI_Datatype simple[] = {contig, hvec, indexed, iblock, nested, hiblock};
    for (int k = 0; k < 6; k++) {
      int src[64], dst[64];
      for (int i = 0; i < 64; i++) src[i] = seed + i * 3 + k;
      for (int i = 0; i < 64; i++) dst[i] = -1;
      int off = simple[k] == hiblock || simple[k] == nested ? 8 : 0; /* room for negative offsets */
      MPI_Sendrecv(src + off, 2, simple[k], next, 10 + k, dst + off, 2, simple[k], prev, 10 + k, MPI_COMM_WORLD,
                   MPI_STATUS_IGNORE);
      mix_bytes(dst, sizeof dst);
    }
    /* 2. A matrix column (vector), received as ROWS contiguous doubles and as a column. */
    double m[ROWS][COLS], col[ROWS], m2[ROWS][COLS];
    for (int i = 0; i < ROWS; i++)
      for (int j = 0; j < COLS; j++) m[i][j] = seed + i * 10 + j, m2[i][j] = -1;
    MPI_Sendrecv(&m[0][2], 1, column, next, 20, col, ROWS, MPI_DOUBLE, prev, 20, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    for (int i = 0; i < ROWS; i++) CHECK(col[i] == from_seed + i * 10 + 2, "column row %d: %g", i, col[i]);
    MPI_Sendrecv(col, ROWS, MPI_DOUBLE, next, 21, &m2[0][3], 1, dup_t, prev, 21, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    int pp = (prev + size - 1) % size; /* col, sent on by prev, is what prev got from pp */
    for (int i = 0; i < ROWS; i++)
      for (int j = 0; j < COLS; j++) {
        double want = j == 3 ? (double)(pp * 1000 + step * 7 + i * 10 + 2) : -1;
        CHECK(m2[i][j] == want, "column into column [%d][%d]: %g", i, j, m2[i][j]);
      }
    mix_bytes(m2, sizeof m2);
    mix_bytes(col, sizeof col);
    /* 3. Structs with gaps (blocking, and nonblocking with the type freed while pending). */
    struct particle ps[4], pr[4], pn[4];
    memset(ps, 0x5a, sizeof ps);
    memset(pr, 0x77, sizeof pr);
    memset(pn, 0x33, sizeof pn);
    for (int i = 0; i < 4; i++) {
      ps[i].kind = (char)('a' + (seed + i) % 26);
      for (int d = 0; d < 3; d++) ps[i].pos[d] = seed + i + d * 0.25;
      ps[i].id = seed + i;
      ps[i].flags = (short)(i * 3 + step);
    }
    MPI_Sendrecv(ps, 4, particle_r, next, 30, pr, 4, particle_r, prev, 30, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    for (int i = 0; i < 4; i++) {
      CHECK(pr[i].id == from_seed + i && pr[i].pos[2] == from_seed + i + 0.5 && pr[i].flags == (short)(i * 3 + step),
            "particle %d: id %d", i, pr[i].id);
    }
    mix_bytes(pr, sizeof pr);
    MPI_Datatype every_other;
    MPI_Type_vector(2, 1, 2, particle_r, &every_other);
    MPI_Type_commit(&every_other);
    MPI_Request rq[2];
    MPI_Irecv(pn, 1, every_other, prev, 31, MPI_COMM_WORLD, &rq[0]);
    MPI_Type_free(&every_other);  /* allowed: the pending receive keeps it */
    MPI_Isend(ps, 1, vec_of_struct, next, 31, MPI_COMM_WORLD, &rq[1]);
    if (step_us > 0) usleep(step_us / 2);
    MPI_Status st[2];
    MPI_Waitall(2, rq, st);
    int got;
    MPI_Get_count(&st[0], particle_r, &got);
    CHECK(got == 2, "Get_count of 2 particles: %d", got);
    MPI_Get_elements(&st[0], particle_r, &got);
    CHECK(got == 12, "Get_elements of 2 particles: %d", got);
    CHECK(pn[0].id == from_seed && pn[2].id == from_seed + 2 && pn[1].id == 0x33333333, "every other particle");
    mix_bytes(pn, sizeof pn);
    /* 4. Halo exchange with subarrays: my last interior column to next's left halo. */
    int a[HN][HM], b[HN][HM];
    for (int i = 0; i < HN; i++)
      for (int j = 0; j < HM; j++) a[i][j] = (i == 0 || j == 0 || i == HN - 1 || j == HM - 1) ? -7 : seed + i * HM + j, b[i][j] = a[i][j];
    MPI_Sendrecv(a, 1, subC, next, 40, b, 1, halo_col, prev, 40, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    for (int i = 1; i < HN - 1; i++) CHECK(b[i][0] == from_seed + i * HM + HM - 2, "halo row %d: %d", i, b[i][0]);
    CHECK(b[0][0] == -7 && b[HN - 1][0] == -7, "halo corners untouched");
    mix_bytes(b, sizeof b);
      /* Fortran order: a seen as an HM x HN column-major array; its row 1 is a's interior column 1. */
    int frow[HN - 2];
    MPI_Sendrecv(a, 1, subF, next, 41, frow, HN - 2, MPI_INT, prev, 41, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    for (int j = 0; j < HN - 2; j++) CHECK(frow[j] == from_seed + (j + 1) * HM + 1, "fortran subarray %d: %d", j, frow[j]);
    /* 5. MPI_BOTTOM with absolute addresses. */
    int x = seed, y[2] = {seed + 1, seed + 2}, rx = -1, ry[2] = {-1, -1};
    MPI_Aint ax[2], ar[2];
    MPI_Get_address(&x, &ax[0]);
    MPI_Get_address(y, &ax[1]);
    MPI_Get_address(&rx, &ar[0]);
    MPI_Get_address(ry, &ar[1]);
    int bl2[2] = {1, 2};
    MPI_Datatype bs, br;
    MPI_Type_create_hindexed(2, bl2, ax, MPI_INT, &bs);
    MPI_Type_create_hindexed(2, bl2, ar, MPI_INT, &br);
    MPI_Type_commit(&bs);
    MPI_Type_commit(&br);
    MPI_Sendrecv(MPI_BOTTOM, 1, bs, next, 50, MPI_BOTTOM, 1, br, prev, 50, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    CHECK(rx == from_seed && ry[0] == from_seed + 1 && ry[1] == from_seed + 2, "MPI_BOTTOM: %d %d %d", rx, ry[0], ry[1]);
    MPI_Type_free(&bs);
    MPI_Type_free(&br);
    CHECK(bs == MPI_DATATYPE_NULL, "Type_free sets MPI_DATATYPE_NULL");
    /* 6. Collectives: Bcast of a column from root 0; Gather of subarrays; Allreduce on derived types. */
    double bm[ROWS][COLS];
    for (int i = 0; i < ROWS; i++)
      for (int j = 0; j < COLS; j++) bm[i][j] = rank == 0 ? step * 100 + i * 10 + j : -1;
    MPI_Bcast(&bm[0][1], 1, column, 0, MPI_COMM_WORLD);
    for (int i = 0; i < ROWS; i++) CHECK(bm[i][1] == step * 100 + i * 10 + 1 && (rank == 0 || bm[i][0] == -1), "bcast column %d", i);
    mix_bytes(bm, sizeof bm);
    int *gathered = malloc(sizeof(int) * (HN - 2) * size);
    MPI_Gather(a, 1, subC, gathered, HN - 2, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
      for (int r = 0; r < size; r++)
        for (int i = 0; i < HN - 2; i++)
          CHECK(gathered[r * (HN - 2) + i] == r * 1000 + step * 7 + (i + 1) * HM + HM - 2, "gather %d %d", r, i);
      mix_bytes(gathered, sizeof(int) * (HN - 2) * size);
    }
    free(gathered);
    struct particle *pall = malloc(sizeof(struct particle) * 2 * size);
    memset(pall, 0x11, sizeof(struct particle) * 2 * size);
    MPI_Allgather(ps + 1, 2, particle_r, pall, 2, particle_r, MPI_COMM_WORLD);
    for (int r = 0; r < size; r++)
      CHECK(pall[2 * r].id == r * 1000 + step * 7 + 1 && pall[2 * r + 1].pos[1] == r * 1000 + step * 7 + 2 + 0.25,
            "allgather of particles from %d", r);
    mix_bytes(pall, sizeof(struct particle) * 2 * size);
    free(pall);
    printf("rank %d step %d sum %016llx\n", rank, step, hash);
    fflush(stdout);
    if (step_us > 0) usleep(step_us / 2);
  }
  for (int i = 0; i < (int)(sizeof all / sizeof all[0]); i++) MPI_Type_free(&all[i]);
  printf("rank %d %s\n", rank, fails ? "FAILED" : "PASS");
  MPI_Finalize();
  return fails ? 1 : 0;
}
