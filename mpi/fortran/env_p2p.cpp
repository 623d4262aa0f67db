// SPDX-License-Identifier: Apache-2.0
// Fortran bindings: environment and point-to-point calls (fortran.hpp explains the
// conversions). Requests: a Fortran request is an integer from handle_f2c; when a Wait/Test
// completes it (its C handle becomes MPI_REQUEST_NULL) the integer is released and the
// application's variable becomes MPI_REQUEST_NULL (0). Waitany/Waitsome/Testany/Testsome
// indices are 1-based in Fortran.
#include <vector>

#include "fortran.hpp"

using namespace ferry::fortran;

// ---- environment ----------------------------------------------------------------------------

FERRY_FORTRAN(void, init, (F* ierr)) { set_ierr(ierr, PMPI_Init(nullptr, nullptr)); }

FERRY_FORTRAN(void, init_thread, (F* required, F* provided, F* ierr)) {
  int p = 0;
  set_ierr(ierr, PMPI_Init_thread(nullptr, nullptr, *required, &p));
  *provided = p;
}

FERRY_FORTRAN(void, finalize, (F* ierr)) { set_ierr(ierr, PMPI_Finalize()); }

FERRY_FORTRAN(void, initialized, (F* flag, F* ierr)) {
  int c = 0;
  set_ierr(ierr, PMPI_Initialized(&c));
  *flag = logical(c);
}

FERRY_FORTRAN(void, finalized, (F* flag, F* ierr)) {
  int c = 0;
  set_ierr(ierr, PMPI_Finalized(&c));
  *flag = logical(c);
}

FERRY_FORTRAN(void, query_thread, (F* provided, F* ierr)) {
  int p = 0;
  set_ierr(ierr, PMPI_Query_thread(&p));
  *provided = p;
}

FERRY_FORTRAN(void, abort, (F* c, F* code, F* ierr)) { set_ierr(ierr, PMPI_Abort(comm(c), *code)); }

FERRY_FORTRAN(double, wtime, ()) { return PMPI_Wtime(); }
FERRY_FORTRAN(double, wtick, ()) { return PMPI_Wtick(); }

// CHARACTER*(*) name: its length comes last; the result is blank-padded, as Fortran expects.
FERRY_FORTRAN(void, get_processor_name, (char* name, F* resultlen, F* ierr, std::size_t name_len)) {
  char text[MPI_MAX_PROCESSOR_NAME + 1] = {};
  int len = 0;
  int rc = PMPI_Get_processor_name(text, &len);
  std::size_t n = static_cast<std::size_t>(len) < name_len ? static_cast<std::size_t>(len) : name_len;
  std::memcpy(name, text, n);
  std::memset(name + n, ' ', name_len - n);
  *resultlen = static_cast<F>(n);
  set_ierr(ierr, rc);
}

FERRY_FORTRAN(void, get_version, (F* version, F* subversion, F* ierr)) {
  int v = 0, s = 0;
  set_ierr(ierr, PMPI_Get_version(&v, &s));
  *version = v;
  *subversion = s;
}

FERRY_FORTRAN(void, comm_rank, (F* c, F* rank, F* ierr)) {
  int r = 0;
  set_ierr(ierr, PMPI_Comm_rank(comm(c), &r));
  *rank = r;
}

FERRY_FORTRAN(void, comm_size, (F* c, F* size, F* ierr)) {
  int s = 0;
  set_ierr(ierr, PMPI_Comm_size(comm(c), &s));
  *size = s;
}

// ---- blocking point to point ----------------------------------------------------------------

#define FERRY_F_SEND(name, cfn)                                                                  \
  FERRY_FORTRAN(void, name, (void* b, F* count, F* t, F* dest, F* tag, F* c, F* ierr)) {         \
    set_ierr(ierr, cfn(buf(b), *count, type(t), *dest, *tag, comm(c)));                          \
  }
FERRY_F_SEND(send, PMPI_Send)
FERRY_F_SEND(ssend, PMPI_Ssend)
FERRY_F_SEND(rsend, PMPI_Rsend)
FERRY_F_SEND(bsend, PMPI_Bsend)
#undef FERRY_F_SEND

FERRY_FORTRAN(void, recv, (void* b, F* count, F* t, F* source, F* tag, F* c, F* status, F* ierr)) {
  Status st(status);
  set_ierr(ierr, PMPI_Recv(buf(b), *count, type(t), *source, *tag, comm(c), st.c()));
  st.store();
}

FERRY_FORTRAN(void, sendrecv, (void* sb, F* scount, F* stype, F* dest, F* stag, void* rb, F* rcount, F* rtype,
                               F* source, F* rtag, F* c, F* status, F* ierr)) {
  Status st(status);
  set_ierr(ierr, PMPI_Sendrecv(buf(sb), *scount, type(stype), *dest, *stag, buf(rb), *rcount, type(rtype),
                               *source, *rtag, comm(c), st.c()));
  st.store();
}

FERRY_FORTRAN(void, sendrecv_replace, (void* b, F* count, F* t, F* dest, F* stag, F* source, F* rtag, F* c,
                                       F* status, F* ierr)) {
  Status st(status);
  set_ierr(ierr, PMPI_Sendrecv_replace(buf(b), *count, type(t), *dest, *stag, *source, *rtag, comm(c), st.c()));
  st.store();
}

FERRY_FORTRAN(void, probe, (F* source, F* tag, F* c, F* status, F* ierr)) {
  Status st(status);
  set_ierr(ierr, PMPI_Probe(*source, *tag, comm(c), st.c()));
  st.store();
}

FERRY_FORTRAN(void, iprobe, (F* source, F* tag, F* c, F* flag, F* status, F* ierr)) {
  Status st(status);
  int f = 0;
  set_ierr(ierr, PMPI_Iprobe(*source, *tag, comm(c), &f, st.c()));
  *flag = logical(f);
  if (f) st.store();
}

FERRY_FORTRAN(void, get_count, (F* status, F* t, F* count, F* ierr)) {
  MPI_Status s = status_in(status);
  int n = 0;
  set_ierr(ierr, PMPI_Get_count(&s, type(t), &n));
  *count = n;
}

FERRY_FORTRAN(void, get_elements, (F* status, F* t, F* count, F* ierr)) {
  MPI_Status s = status_in(status);
  int n = 0;
  set_ierr(ierr, PMPI_Get_elements(&s, type(t), &n));
  *count = n;
}

FERRY_FORTRAN(void, test_cancelled, (F* status, F* flag, F* ierr)) {
  MPI_Status s = status_in(status);
  int f = 0;
  set_ierr(ierr, PMPI_Test_cancelled(&s, &f));
  *flag = logical(f);
}

FERRY_FORTRAN(void, buffer_attach, (void* b, F* size, F* ierr)) { set_ierr(ierr, PMPI_Buffer_attach(b, *size)); }

// The buffer's address cannot be handed back through a Fortran choice argument: only the size.
FERRY_FORTRAN(void, buffer_detach, (void*, F* size, F* ierr)) {
  void* address = nullptr;
  int n = 0;
  set_ierr(ierr, PMPI_Buffer_detach(&address, &n));
  *size = n;
}

// ---- nonblocking point to point -------------------------------------------------------------

#define FERRY_F_ISEND(name, cfn)                                                                        \
  FERRY_FORTRAN(void, name, (void* b, F* count, F* t, F* dest, F* tag, F* c, F* req, F* ierr)) {        \
    MPI_Request r = nullptr;                                                                            \
    set_ierr(ierr, cfn(buf(b), *count, type(t), *dest, *tag, comm(c), &r));                             \
    *req = to_f(FERRY_F_REQUEST, r);                                                                    \
  }
FERRY_F_ISEND(isend, PMPI_Isend)
FERRY_F_ISEND(issend, PMPI_Issend)
FERRY_F_ISEND(irsend, PMPI_Irsend)
FERRY_F_ISEND(ibsend, PMPI_Ibsend)
FERRY_F_ISEND(irecv, PMPI_Irecv)
#undef FERRY_F_ISEND

FERRY_FORTRAN(void, wait, (F* req, F* status, F* ierr)) {
  Status st(status);
  MPI_Request r = request(req);
  set_ierr(ierr, PMPI_Wait(&r, st.c()));
  update_handle(FERRY_F_REQUEST, req, r);
  st.store();
}

FERRY_FORTRAN(void, test, (F* req, F* flag, F* status, F* ierr)) {
  Status st(status);
  MPI_Request r = request(req);
  int f = 0;
  set_ierr(ierr, PMPI_Test(&r, &f, st.c()));
  *flag = logical(f);
  if (f) {
    update_handle(FERRY_F_REQUEST, req, r);
    st.store();
  }
}

FERRY_FORTRAN(void, request_free, (F* req, F* ierr)) {
  MPI_Request r = request(req);
  set_ierr(ierr, PMPI_Request_free(&r));
  update_handle(FERRY_F_REQUEST, req, r);
}

FERRY_FORTRAN(void, cancel, (F* req, F* ierr)) {
  MPI_Request r = request(req);
  set_ierr(ierr, PMPI_Cancel(&r));
}

namespace {

// An array of Fortran requests as C handles, written back (completed ones released) by store().
class Requests {
 public:
  Requests(int count, F* f) : f_(f), c_(static_cast<std::size_t>(count > 0 ? count : 0)) {
    for (std::size_t i = 0; i < c_.size(); ++i) c_[i] = request(&f_[i]);
  }
  MPI_Request* c() { return c_.data(); }
  void store(std::size_t i) { update_handle(FERRY_F_REQUEST, &f_[i], c_[i]); }
  void store_all() {
    for (std::size_t i = 0; i < c_.size(); ++i) store(i);
  }

 private:
  F* f_;
  std::vector<MPI_Request> c_;
};

class Statuses {
 public:
  Statuses(int count, F* f)
      : f_(f == mpi_fortran_statuses_ignore_ ? nullptr : f), c_(f_ == nullptr ? 0 : static_cast<std::size_t>(count)) {}
  MPI_Status* c() { return f_ == nullptr ? MPI_STATUSES_IGNORE : c_.data(); }
  void store(std::size_t i, std::size_t into) {
    if (f_ != nullptr) std::memcpy(f_ + into * kStatusInts, &c_[i], sizeof(MPI_Status));
  }
  void store_all() {
    for (std::size_t i = 0; i < c_.size(); ++i) store(i, i);
  }

 private:
  F* f_;
  std::vector<MPI_Status> c_;
};

}  // namespace

FERRY_FORTRAN(void, waitall, (F* count, F* reqs, F* statuses, F* ierr)) {
  Requests r(*count, reqs);
  Statuses st(*count, statuses);
  set_ierr(ierr, PMPI_Waitall(*count, r.c(), st.c()));
  r.store_all();
  st.store_all();
}

FERRY_FORTRAN(void, testall, (F* count, F* reqs, F* flag, F* statuses, F* ierr)) {
  Requests r(*count, reqs);
  Statuses st(*count, statuses);
  int f = 0;
  set_ierr(ierr, PMPI_Testall(*count, r.c(), &f, st.c()));
  *flag = logical(f);
  if (f) {
    r.store_all();
    st.store_all();
  }
}

FERRY_FORTRAN(void, waitany, (F* count, F* reqs, F* index, F* status, F* ierr)) {
  Requests r(*count, reqs);
  Status st(status);
  int i = MPI_UNDEFINED;
  set_ierr(ierr, PMPI_Waitany(*count, r.c(), &i, st.c()));
  if (i != MPI_UNDEFINED) r.store(static_cast<std::size_t>(i));
  *index = i == MPI_UNDEFINED ? i : i + 1;
  st.store();
}

FERRY_FORTRAN(void, testany, (F* count, F* reqs, F* index, F* flag, F* status, F* ierr)) {
  Requests r(*count, reqs);
  Status st(status);
  int i = MPI_UNDEFINED, f = 0;
  set_ierr(ierr, PMPI_Testany(*count, r.c(), &i, &f, st.c()));
  if (i != MPI_UNDEFINED) r.store(static_cast<std::size_t>(i));
  *index = i == MPI_UNDEFINED ? i : i + 1;
  *flag = logical(f);
  if (f) st.store();
}

namespace {

void some(int (*cfn)(int, MPI_Request*, int*, int*, MPI_Status*), F* incount, F* reqs, F* outcount, F* indices,
          F* statuses, F* ierr) {
  Requests r(*incount, reqs);
  Statuses st(*incount, statuses);
  std::vector<int> idx(static_cast<std::size_t>(*incount > 0 ? *incount : 0));
  int out = 0;
  set_ierr(ierr, cfn(*incount, r.c(), &out, idx.data(), st.c()));
  *outcount = out;
  for (int k = 0; k < out && out != MPI_UNDEFINED; ++k) {
    auto i = static_cast<std::size_t>(idx[static_cast<std::size_t>(k)]);
    r.store(i);
    st.store(static_cast<std::size_t>(k), static_cast<std::size_t>(k));
    indices[k] = static_cast<F>(i) + 1;
  }
}

}  // namespace

// Waitsome/Testsome fill statuses[0..outcount) in completion order, like C.
FERRY_FORTRAN(void, waitsome, (F* incount, F* reqs, F* outcount, F* indices, F* statuses, F* ierr)) {
  some(PMPI_Waitsome, incount, reqs, outcount, indices, statuses, ierr);
}

FERRY_FORTRAN(void, testsome, (F* incount, F* reqs, F* outcount, F* indices, F* statuses, F* ierr)) {
  some(PMPI_Testsome, incount, reqs, outcount, indices, statuses, ierr);
}
