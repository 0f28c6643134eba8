/*
 * A C client of a stagebeam coordinator: libzmq (a DEALER socket) and the protobuf-c code generated
 * from proto/stagebeam.proto. One request at a time per client; heartbeats while waiting, and a job
 * is submitted again when the coordinator says it does not know it (it restarted; resubmission is
 * idempotent).
 */
#ifndef STAGEBEAM_CLIENT_H
#define STAGEBEAM_CLIENT_H

#include <stddef.h>

#include "stagebeam.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sb_client sb_client;

/* What went wrong: `code` is the coordinator's ErrorCode (0 for a local failure: a socket, a file,
 * a timeout), `message` names the problem. */
typedef struct {
    Stagebeam__V1__ErrorCode code;
    char message[512];
} sb_error;

/* Called for each JobEvent of a job submitted with stream_events set. */
typedef void (*sb_event_fn)(const Stagebeam__V1__JobEvent *event, void *user);

/* Connects to `endpoint` (e.g. "tcp://127.0.0.1:5555"); NULL with `error` filled on failure. */
sb_client *sb_client_open(const char *endpoint, sb_error *error);
void sb_client_close(sb_client *client);

/* Submits `job` (an empty job_id gets a fresh random one) and waits for its result, calling
 * `on_event` (may be NULL) for each event. Returns 0 and sets `*result` (free it with
 * stagebeam__v1__job_result__free_unpacked(*result, NULL)) when the job succeeded; returns -1 with
 * `error` filled when it was refused or failed (`*result` is then set for a failed job, else NULL),
 * or when `timeout_ms` (0: no limit) passed. */
int sb_client_submit(sb_client *client, Stagebeam__V1__SubmitJob *job, sb_event_fn on_event, void *user, int timeout_ms,
                     Stagebeam__V1__JobResult **result, sb_error *error);

/* Job `job_id` by id alone (GetJob): 0 with `*result` set (free it as above) to its JobResult — final
 * (any status), or JOB_STATUS_QUEUED / JOB_STATUS_RUNNING for a job not finished; -1 with `error`
 * filled for an id the coordinator does not know (ERROR_CODE_UNKNOWN_JOB) or a timeout. */
int sb_client_get_job(sb_client *client, const char *job_id, int timeout_ms, Stagebeam__V1__JobResult **result, sb_error *error);

/* Cancels job `job_id` (CancelJob, `reason` may be NULL): 0 with `*result` set to the job's final
 * JobResult (JOB_STATUS_CANCELLED, or what it reached when it finished first); -1 as above. */
int sb_client_cancel(sb_client *client, const char *job_id, const char *reason, int timeout_ms, Stagebeam__V1__JobResult **result,
                     sb_error *error);

/* The coordinator's status; free `*reply` with stagebeam__v1__status_reply__free_unpacked. */
int sb_client_status(sb_client *client, int timeout_ms, Stagebeam__V1__StatusReply **reply, sb_error *error);

/* Reads a whole file (an image) into `data` (free data->data with free()). */
int sb_read_file(const char *path, ProtobufCBinaryData *data, sb_error *error);

/* The ErrorCode's name without its prefix, lower case, e.g. "no_worker". */
const char *sb_error_code_name(Stagebeam__V1__ErrorCode code);

#ifdef __cplusplus
}
#endif

#endif
