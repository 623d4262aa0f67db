// SPDX-License-Identifier: Apache-2.0
// StateDb on SQLite. Durability choice: WAL with synchronous=FULL. WAL lets STATUS/WAIT
// readers run beside the writer; FULL fsyncs the WAL at every commit. NORMAL would survive
// kill -9 of the coordinator too, but on power loss or a kernel crash it may drop the last
// commits, e.g. a generation the shared store already shows committed: the DB and the store
// would disagree. Commits are a handful per checkpoint round, so FULL costs nothing visible.
#include "state_db.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

namespace ferry::coord {
namespace {

class SqliteCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "sqlite"; }
  std::string message(int c) const override { return sqlite3_errstr(c); }
};

const std::error_category& sqlite_category() {
  static const SqliteCategory c;
  return c;
}

Error sql_error(sqlite3* db, int rc, const std::string& what) {
  std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Error(std::error_code(rc, sqlite_category()), "state db " + what + " (" + detail + ")");
}

// One prepared statement; finalized on destruction.
class Stmt {
public:
  static Result<Stmt> prepare(sqlite3* db, const char* sql) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
    if (rc != SQLITE_OK) return fail(sql_error(db, rc, std::string("prepare: ") + sql));
    return Stmt(db, s, sql);
  }
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_), sql_(o.sql_) { o.s_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt() {
    if (s_) sqlite3_finalize(s_);
  }

  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  template <class T>
  Stmt& bind(int i, const std::optional<T>& v) {
    if (!v) {
      sqlite3_bind_null(s_, i);
      return *this;
    }
    if constexpr (std::is_same_v<T, std::string>) return bind(i, *v);
    else return bind(i, static_cast<std::int64_t>(*v));
  }

  // true: a row is available; false: done.
  Result<bool> step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return fail(sql_error(db_, rc, std::string("step: ") + sql_));
  }
  Result<void> run() {
    auto r = step();
    if (!r) return fail(r.error());
    return {};
  }

  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  bool null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
             : std::string();
  }
  template <class T>
  std::optional<T> opt(int c) const {
    if (null(c)) return std::nullopt;
    if constexpr (std::is_same_v<T, std::string>) return text(c);
    else return static_cast<T>(i64(c));
  }

private:
  Stmt(sqlite3* db, sqlite3_stmt* s, const char* sql) : db_(db), s_(s), sql_(sql) {}
  sqlite3* db_;
  sqlite3_stmt* s_;
  const char* sql_;
};

Result<void> exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return fail(Error(std::error_code(rc, sqlite_category()),
                      "state db exec (" + msg + "): " + std::string(sql).substr(0, 60)));
  }
  return {};
}

std::string to_json(const std::vector<std::string>& v) { return nlohmann::json(v).dump(); }
std::vector<std::string> from_json(const std::string& s) {
  auto j = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& e : j)
    if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

// clang-format off
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE jobs (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL DEFAULT '',
  owner_uid   INTEGER NOT NULL,
  owner_gid   INTEGER NOT NULL,
  argv        TEXT NOT NULL,              -- JSON array of strings
  cwd         TEXT NOT NULL,
  ntasks      INTEGER NOT NULL,
  nodes       TEXT NOT NULL,              -- JSON array of node names
  state       TEXT NOT NULL,
  interval_s  INTEGER NOT NULL DEFAULT 0,
  keep        INTEGER NOT NULL DEFAULT 0,
  created_ns  INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_owner_name ON jobs(owner_uid, name) WHERE name <> '';
CREATE TABLE nodes (
  name              TEXT PRIMARY KEY,
  last_heartbeat_ns INTEGER NOT NULL
);
CREATE TABLE generations (
  job          INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  number       INTEGER NOT NULL,
  time_ns      INTEGER NOT NULL,
  bytes        INTEGER NOT NULL DEFAULT 0,
  duration_ns  INTEGER NOT NULL DEFAULT 0,
  committed    INTEGER NOT NULL DEFAULT 0 CHECK (committed IN (0, 1)),
  PRIMARY KEY (job, number)
);
CREATE TABLE rounds (                     -- at most one in-flight round per job
  round_id        INTEGER PRIMARY KEY AUTOINCREMENT,
  job             INTEGER NOT NULL UNIQUE REFERENCES jobs(id) ON DELETE CASCADE,
  generation      INTEGER NOT NULL,
  generation_dir  TEXT NOT NULL,
  nodes           TEXT NOT NULL,
  started_ns      INTEGER NOT NULL,
  FOREIGN KEY (job, generation) REFERENCES generations(job, number) ON DELETE CASCADE
);
CREATE TABLE restarts (                   -- no foreign key: records outlive their job
  restart_id   INTEGER PRIMARY KEY AUTOINCREMENT,
  job          TEXT NOT NULL,
  generation   INTEGER NOT NULL,
  outcome      INTEGER NOT NULL CHECK (outcome BETWEEN 0 AND 3),  -- proto::Outcome
  exit_status  INTEGER,
  signal       INTEGER,
  phase        INTEGER,                   -- proto::RestartPhase
  rank         INTEGER,
  node         TEXT,
  reason       TEXT,
  started_ns   INTEGER NOT NULL,
  ended_ns     INTEGER
);
CREATE INDEX restarts_job ON restarts(job);
CREATE TABLE restart_ranks (
  restart_id   INTEGER NOT NULL REFERENCES restarts(restart_id) ON DELETE CASCADE,
  rank         INTEGER NOT NULL,
  node         TEXT NOT NULL,
  exit_status  INTEGER,
  signal       INTEGER,
  time_ns      INTEGER NOT NULL,
  PRIMARY KEY (restart_id, rank)
);
PRAGMA user_version = 1;
)sql";
// clang-format on

constexpr const char* kJobColumns =
    "id, name, owner_uid, owner_gid, argv, cwd, ntasks, nodes, state, interval_s, keep, created_ns";

JobRow read_job(const Stmt& s) {
  JobRow j;
  j.id = std::to_string(s.i64(0));
  j.name = s.text(1);
  j.owner_uid = static_cast<std::uint32_t>(s.i64(2));
  j.owner_gid = static_cast<std::uint32_t>(s.i64(3));
  j.argv = from_json(s.text(4));
  j.cwd = s.text(5);
  j.ntasks = static_cast<std::uint32_t>(s.i64(6));
  j.nodes = from_json(s.text(7));
  j.state = s.text(8);
  j.interval_s = static_cast<std::uint32_t>(s.i64(9));
  j.keep = static_cast<std::uint32_t>(s.i64(10));
  j.created_ns = s.i64(11);
  return j;
}

constexpr const char* kRestartColumns =
    "restart_id, job, generation, outcome, exit_status, signal, phase, rank, node, reason, "
    "started_ns, ended_ns";

RestartRow read_restart(const Stmt& s) {
  RestartRow r;
  r.restart_id = static_cast<std::uint64_t>(s.i64(0));
  r.job = s.text(1);
  r.generation = static_cast<std::uint64_t>(s.i64(2));
  r.outcome = static_cast<proto::Outcome>(s.i64(3));
  r.exit_status = s.opt<std::int32_t>(4);
  r.signal = s.opt<std::int32_t>(5);
  if (auto p = s.opt<std::int64_t>(6)) r.phase = static_cast<proto::RestartPhase>(*p);
  r.rank = s.opt<std::uint32_t>(7);
  r.node = s.opt<std::string>(8);
  r.reason = s.opt<std::string>(9);
  r.started_ns = s.i64(10);
  r.ended_ns = s.opt<std::int64_t>(11);
  return r;
}

// Job ids are decimal strings of the integer key; anything else is not an id.
std::optional<std::int64_t> parse_id(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

Result<StateDb> StateDb::open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  StateDb db(raw);  // closes raw on every return path below
  if (rc != SQLITE_OK) return fail(sql_error(raw, rc, "open " + path));
  ::chmod(path.c_str(), 0600);
  sqlite3_busy_timeout(raw, 5000);
  FERRY_TRY_VOID(exec(raw, "PRAGMA journal_mode = WAL"));
  FERRY_TRY_VOID(exec(raw, "PRAGMA synchronous = FULL"));
  FERRY_TRY_VOID(exec(raw, "PRAGMA foreign_keys = ON"));
  FERRY_TRY_VOID(db.migrate());
  return db;
}

StateDb::StateDb(StateDb&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
StateDb& StateDb::operator=(StateDb&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close_v2(db_);
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}
StateDb::~StateDb() {
  if (db_) sqlite3_close_v2(db_);
}

Result<int> StateDb::schema_version() {
  FERRY_TRY(s, Stmt::prepare(db_, "PRAGMA user_version"));
  FERRY_TRY(row, s.step());
  return row ? static_cast<int>(s.i64(0)) : 0;
}

Result<void> StateDb::migrate() {
  FERRY_TRY(v, schema_version());
  if (v > kSchemaVersion)
    return fail(errc::unsupported, "state db schema version " + std::to_string(v) +
                                       " is newer than this coordinator's (" +
                                       std::to_string(kSchemaVersion) + ")");
  if (v == kSchemaVersion) return {};
  // v == 0: a new file. Later versions add "if (v == 1) { ALTER ...; user_version = 2 }".
  return transaction([&]() -> Result<void> { return exec(db_, kSchemaV1); });
}

Result<void> StateDb::transaction(const std::function<Result<void>()>& fn) {
  // Outermost: BEGIN IMMEDIATE (takes the write lock up front, so no deadlock upgrade later).
  // Nested: a savepoint, so a helper that is itself transactional composes into a caller's.
  bool nested = sqlite3_get_autocommit(db_) == 0;
  FERRY_TRY_VOID(exec(db_, nested ? "SAVEPOINT ferry_nested" : "BEGIN IMMEDIATE"));
  auto r = fn();
  if (!r) {
    (void)exec(db_, nested ? "ROLLBACK TO ferry_nested; RELEASE ferry_nested" : "ROLLBACK");
    return r;
  }
  auto c = exec(db_, nested ? "RELEASE ferry_nested" : "COMMIT");
  if (!c) {
    (void)exec(db_, nested ? "ROLLBACK TO ferry_nested; RELEASE ferry_nested" : "ROLLBACK");
    return c;
  }
  return {};
}

// ---- jobs ------------------------------------------------------------------------------

Result<std::string> StateDb::create_job(const JobRow& j) {
  // ?12 NULL: SQLite assigns the next id; else the caller's (the shared store allocated it).
  FERRY_TRY(s, Stmt::prepare(db_,
                             "INSERT INTO jobs (name, owner_uid, owner_gid, argv, cwd, ntasks, "
                             "nodes, state, interval_s, keep, created_ns, id) "
                             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"));
  s.bind(12, j.id.empty() ? std::optional<std::int64_t>() : parse_id(j.id));
  s.bind(1, j.name).bind(2, std::int64_t{j.owner_uid}).bind(3, std::int64_t{j.owner_gid});
  s.bind(4, to_json(j.argv)).bind(5, j.cwd).bind(6, std::int64_t{j.ntasks});
  s.bind(7, to_json(j.nodes)).bind(8, j.state).bind(9, std::int64_t{j.interval_s});
  s.bind(10, std::int64_t{j.keep}).bind(11, j.created_ns);
  auto r = s.run();
  if (!r) {
    if (r.error().code().value() == SQLITE_CONSTRAINT)
      return fail(errc::busy, "a job named '" + j.name + "' exists already");
    return fail(r.error());
  }
  return std::to_string(sqlite3_last_insert_rowid(db_));
}

Result<JobRow> StateDb::job(const std::string& id_or_name, std::optional<std::uint32_t> owner) {
  if (auto id = parse_id(id_or_name)) {
    FERRY_TRY(s, Stmt::prepare(db_, (std::string("SELECT ") + kJobColumns +
                                     " FROM jobs WHERE id = ?1").c_str()));
    s.bind(1, *id);
    FERRY_TRY(row, s.step());
    if (row) return read_job(s);
  }
  FERRY_TRY(s, Stmt::prepare(db_, (std::string("SELECT ") + kJobColumns +
                                   " FROM jobs WHERE name = ?1 AND name <> '' AND "
                                   "(?2 IS NULL OR owner_uid = ?2) ORDER BY id DESC LIMIT 1")
                                      .c_str()));
  s.bind(1, id_or_name).bind(2, owner);
  FERRY_TRY(row, s.step());
  if (!row) return fail(errc::not_found, "no job '" + id_or_name + "'");
  return read_job(s);
}

Result<std::vector<JobRow>> StateDb::jobs(std::optional<std::uint32_t> owner) {
  FERRY_TRY(s, Stmt::prepare(db_, (std::string("SELECT ") + kJobColumns +
                                   " FROM jobs WHERE ?1 IS NULL OR owner_uid = ?1 ORDER BY id")
                                      .c_str()));
  s.bind(1, owner);
  std::vector<JobRow> out;
  while (true) {
    FERRY_TRY(row, s.step());
    if (!row) break;
    out.push_back(read_job(s));
  }
  return out;
}

namespace {
Result<void> expect_changed(sqlite3* db, const std::string& what) {
  if (sqlite3_changes(db) == 0) return fail(errc::not_found, what);
  return {};
}
}  // namespace

Result<void> StateDb::set_job_state(const std::string& id, const std::string& state) {
  FERRY_TRY(s, Stmt::prepare(db_, "UPDATE jobs SET state = ?2 WHERE id = ?1"));
  s.bind(1, parse_id(id).value_or(-1)).bind(2, state);
  FERRY_TRY_VOID(s.run());
  return expect_changed(db_, "no job '" + id + "'");
}

Result<void> StateDb::set_job_nodes(const std::string& id, const std::vector<std::string>& nodes) {
  FERRY_TRY(s, Stmt::prepare(db_, "UPDATE jobs SET nodes = ?2 WHERE id = ?1"));
  s.bind(1, parse_id(id).value_or(-1)).bind(2, to_json(nodes));
  FERRY_TRY_VOID(s.run());
  return expect_changed(db_, "no job '" + id + "'");
}

Result<void> StateDb::delete_job(const std::string& id) {
  FERRY_TRY(s, Stmt::prepare(db_, "DELETE FROM jobs WHERE id = ?1"));
  s.bind(1, parse_id(id).value_or(-1));
  FERRY_TRY_VOID(s.run());
  return expect_changed(db_, "no job '" + id + "'");
}

// ---- nodes -----------------------------------------------------------------------------

Result<void> StateDb::node_heartbeat(const std::string& name, std::int64_t now_ns) {
  FERRY_TRY(s, Stmt::prepare(db_, "INSERT INTO nodes (name, last_heartbeat_ns) VALUES (?1, ?2) "
                                  "ON CONFLICT(name) DO UPDATE SET last_heartbeat_ns = ?2"));
  s.bind(1, name).bind(2, now_ns);
  return s.run();
}

Result<std::vector<NodeRow>> StateDb::nodes() {
  FERRY_TRY(s, Stmt::prepare(db_, "SELECT name, last_heartbeat_ns FROM nodes ORDER BY name"));
  std::vector<NodeRow> out;
  while (true) {
    FERRY_TRY(row, s.step());
    if (!row) break;
    out.push_back({s.text(0), s.i64(1)});
  }
  return out;
}

// ---- generations and rounds ------------------------------------------------------------

Result<std::uint64_t> StateDb::next_generation(const std::string& job) {
  FERRY_TRY(s, Stmt::prepare(db_, "SELECT COALESCE(MAX(number), 0) + 1 FROM generations WHERE job = ?1"));
  s.bind(1, parse_id(job).value_or(-1));
  FERRY_TRY(row, s.step());
  (void)row;
  return static_cast<std::uint64_t>(s.i64(0));
}

Result<RoundRow> StateDb::begin_round(RoundRow round) {
  auto job_id = parse_id(round.job);
  if (!job_id) return fail(errc::not_found, "no job '" + round.job + "'");
  auto r = transaction([&]() -> Result<void> {
    {
      FERRY_TRY(busy, Stmt::prepare(db_, "SELECT generation FROM rounds WHERE job = ?1"));
      busy.bind(1, *job_id);
      FERRY_TRY(row, busy.step());
      if (row)
        return fail(errc::busy, "job " + round.job + " has checkpoint round of generation " +
                                    std::to_string(busy.i64(0)) + " in flight");
    }
    FERRY_TRY(g, Stmt::prepare(db_, "INSERT INTO generations (job, number, time_ns, committed) "
                                    "VALUES (?1, ?2, ?3, 0)"));
    g.bind(1, *job_id).bind(2, static_cast<std::int64_t>(round.generation)).bind(3, round.started_ns);
    auto gr = g.run();
    if (!gr) {
      if (gr.error().code().value() == SQLITE_CONSTRAINT)
        return fail(errc::busy, "generation " + std::to_string(round.generation) + " of job " +
                                    round.job + " exists already (or the job does not)");
      return gr;
    }
    FERRY_TRY(s, Stmt::prepare(db_, "INSERT INTO rounds (job, generation, generation_dir, nodes, "
                                    "started_ns) VALUES (?1, ?2, ?3, ?4, ?5)"));
    s.bind(1, *job_id).bind(2, static_cast<std::int64_t>(round.generation));
    s.bind(3, round.generation_dir).bind(4, to_json(round.nodes)).bind(5, round.started_ns);
    FERRY_TRY_VOID(s.run());
    round.round_id = static_cast<std::uint64_t>(sqlite3_last_insert_rowid(db_));
    return {};
  });
  if (!r) return fail(r.error());
  return round;
}

Result<void> StateDb::commit_generation(const std::string& job, std::uint64_t generation,
                                        std::uint64_t bytes, std::uint64_t duration_ns) {
  auto job_id = parse_id(job).value_or(-1);
  return transaction([&]() -> Result<void> {
    FERRY_TRY(g, Stmt::prepare(db_, "UPDATE generations SET committed = 1, bytes = ?3, "
                                    "duration_ns = ?4 WHERE job = ?1 AND number = ?2"));
    g.bind(1, job_id).bind(2, static_cast<std::int64_t>(generation));
    g.bind(3, static_cast<std::int64_t>(bytes)).bind(4, static_cast<std::int64_t>(duration_ns));
    FERRY_TRY_VOID(g.run());
    FERRY_TRY_VOID(expect_changed(db_, "no generation " + std::to_string(generation) + " of job " + job));
    FERRY_TRY(r, Stmt::prepare(db_, "DELETE FROM rounds WHERE job = ?1 AND generation = ?2"));
    r.bind(1, job_id).bind(2, static_cast<std::int64_t>(generation));
    return r.run();
  });
}

Result<void> StateDb::abort_round(const std::string& job, std::uint64_t generation) {
  auto job_id = parse_id(job).value_or(-1);
  return transaction([&]() -> Result<void> {
    FERRY_TRY(r, Stmt::prepare(db_, "DELETE FROM rounds WHERE job = ?1 AND generation = ?2"));
    r.bind(1, job_id).bind(2, static_cast<std::int64_t>(generation));
    FERRY_TRY_VOID(r.run());
    FERRY_TRY(g, Stmt::prepare(db_, "DELETE FROM generations WHERE job = ?1 AND number = ?2 "
                                    "AND committed = 0"));
    g.bind(1, job_id).bind(2, static_cast<std::int64_t>(generation));
    return g.run();
  });
}

Result<std::vector<RoundRow>> StateDb::rounds_in_flight() {
  FERRY_TRY(s, Stmt::prepare(db_, "SELECT round_id, job, generation, generation_dir, nodes, "
                                  "started_ns FROM rounds ORDER BY round_id"));
  std::vector<RoundRow> out;
  while (true) {
    FERRY_TRY(row, s.step());
    if (!row) break;
    out.push_back(RoundRow{static_cast<std::uint64_t>(s.i64(0)), std::to_string(s.i64(1)),
                           static_cast<std::uint64_t>(s.i64(2)), s.text(3), from_json(s.text(4)),
                           s.i64(5)});
  }
  return out;
}

Result<std::vector<GenerationRow>> StateDb::generations(const std::string& job, bool committed_only) {
  FERRY_TRY(s, Stmt::prepare(db_, "SELECT number, time_ns, bytes, duration_ns, committed FROM "
                                  "generations WHERE job = ?1 AND (committed = 1 OR ?2 = 0) "
                                  "ORDER BY number"));
  s.bind(1, parse_id(job).value_or(-1)).bind(2, std::int64_t{committed_only ? 1 : 0});
  std::vector<GenerationRow> out;
  while (true) {
    FERRY_TRY(row, s.step());
    if (!row) break;
    out.push_back({job, static_cast<std::uint64_t>(s.i64(0)), s.i64(1),
                   static_cast<std::uint64_t>(s.i64(2)), static_cast<std::uint64_t>(s.i64(3)),
                   s.i64(4) != 0});
  }
  return out;
}

Result<void> StateDb::delete_generation(const std::string& job, std::uint64_t generation) {
  FERRY_TRY(s, Stmt::prepare(db_, "DELETE FROM generations WHERE job = ?1 AND number = ?2"));
  s.bind(1, parse_id(job).value_or(-1)).bind(2, static_cast<std::int64_t>(generation));
  FERRY_TRY_VOID(s.run());
  return expect_changed(db_, "no generation " + std::to_string(generation) + " of job " + job);
}

// ---- restarts --------------------------------------------------------------------------

Result<std::uint64_t> StateDb::create_restart(const std::string& job, std::uint64_t generation,
                                              std::int64_t now_ns) {
  FERRY_TRY(s, Stmt::prepare(db_, "INSERT INTO restarts (job, generation, outcome, phase, "
                                  "started_ns) VALUES (?1, ?2, 0, ?3, ?4)"));
  s.bind(1, job).bind(2, static_cast<std::int64_t>(generation));
  s.bind(3, static_cast<std::int64_t>(proto::RestartPhase::place)).bind(4, now_ns);
  FERRY_TRY_VOID(s.run());
  return static_cast<std::uint64_t>(sqlite3_last_insert_rowid(db_));
}

Result<void> StateDb::set_restart_phase(std::uint64_t restart_id, proto::RestartPhase phase) {
  FERRY_TRY(s, Stmt::prepare(db_, "UPDATE restarts SET phase = ?2 WHERE restart_id = ?1 AND outcome = 0"));
  s.bind(1, static_cast<std::int64_t>(restart_id)).bind(2, static_cast<std::int64_t>(phase));
  FERRY_TRY_VOID(s.run());
  return expect_changed(db_, "no running restart " + std::to_string(restart_id));
}

Result<void> StateDb::finish_restart(const RestartRow& f) {
  if (f.outcome == proto::Outcome::running)
    return fail(errc::protocol, "finish_restart needs a final outcome");
  return transaction([&]() -> Result<void> {
    FERRY_TRY(cur, Stmt::prepare(db_, "SELECT outcome FROM restarts WHERE restart_id = ?1"));
    cur.bind(1, static_cast<std::int64_t>(f.restart_id));
    FERRY_TRY(row, cur.step());
    if (!row) return fail(errc::not_found, "no restart " + std::to_string(f.restart_id));
    if (cur.i64(0) != 0)
      return fail(errc::busy, "restart " + std::to_string(f.restart_id) + " is final already");
    FERRY_TRY(s, Stmt::prepare(db_, "UPDATE restarts SET outcome = ?2, exit_status = ?3, "
                                    "signal = ?4, phase = ?5, rank = ?6, node = ?7, reason = ?8, "
                                    "ended_ns = ?9 WHERE restart_id = ?1"));
    s.bind(1, static_cast<std::int64_t>(f.restart_id)).bind(2, static_cast<std::int64_t>(f.outcome));
    s.bind(3, f.exit_status).bind(4, f.signal);
    std::optional<std::int64_t> phase;
    if (f.phase) phase = static_cast<std::int64_t>(*f.phase);
    s.bind(5, phase).bind(6, f.rank).bind(7, f.node).bind(8, f.reason).bind(9, f.ended_ns);
    return s.run();
  });
}

Result<void> StateDb::record_rank_exit(std::uint64_t restart_id, const RankExitRow& e) {
  FERRY_TRY(s, Stmt::prepare(db_, "INSERT OR REPLACE INTO restart_ranks (restart_id, rank, node, "
                                  "exit_status, signal, time_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  s.bind(1, static_cast<std::int64_t>(restart_id)).bind(2, std::int64_t{e.rank}).bind(3, e.node);
  s.bind(4, e.exit_status).bind(5, e.signal).bind(6, e.time_ns);
  return s.run();
}

Result<RestartRow> StateDb::restart(std::uint64_t restart_id) {
  FERRY_TRY(s, Stmt::prepare(db_, (std::string("SELECT ") + kRestartColumns +
                                   " FROM restarts WHERE restart_id = ?1").c_str()));
  s.bind(1, static_cast<std::int64_t>(restart_id));
  FERRY_TRY(row, s.step());
  if (!row) return fail(errc::not_found, "no restart " + std::to_string(restart_id));
  return read_restart(s);
}

Result<std::vector<RestartRow>> StateDb::restarts(const std::string& job) {
  FERRY_TRY(s, Stmt::prepare(db_, (std::string("SELECT ") + kRestartColumns +
                                   " FROM restarts WHERE job = ?1 ORDER BY restart_id").c_str()));
  s.bind(1, job);
  std::vector<RestartRow> out;
  while (true) {
    FERRY_TRY(row, s.step());
    if (!row) break;
    out.push_back(read_restart(s));
  }
  return out;
}

Result<std::vector<RankExitRow>> StateDb::rank_exits(std::uint64_t restart_id) {
  FERRY_TRY(s, Stmt::prepare(db_, "SELECT rank, node, exit_status, signal, time_ns FROM "
                                  "restart_ranks WHERE restart_id = ?1 ORDER BY rank"));
  s.bind(1, static_cast<std::int64_t>(restart_id));
  std::vector<RankExitRow> out;
  while (true) {
    FERRY_TRY(row, s.step());
    if (!row) break;
    out.push_back({static_cast<std::uint32_t>(s.i64(0)), s.text(1), s.opt<std::int32_t>(2),
                   s.opt<std::int32_t>(3), s.i64(4)});
  }
  return out;
}

}  // namespace ferry::coord
