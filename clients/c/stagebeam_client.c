#include "stagebeam_client.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define SB_HEARTBEAT_MS 500

struct sb_client {
    void *context;
    void *socket;
    char endpoint[256];
};

static void fail(sb_error *error, Stagebeam__V1__ErrorCode code, const char *format, ...) {
    if (!error) return;
    error->code = code;
    va_list args;
    va_start(args, format);
    vsnprintf(error->message, sizeof error->message, format, args);
    va_end(args);
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* 16 random bytes as hex, from /dev/urandom. */
static void random_hex(char *out, size_t bytes) {
    unsigned char raw[32] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(raw, 1, bytes, f) != bytes) memset(raw, 0, sizeof raw);
        fclose(f);
    }
    for (size_t i = 0; i < bytes; i++) sprintf(out + 2 * i, "%02x", raw[i]);
}

sb_client *sb_client_open(const char *endpoint, sb_error *error) {
    sb_client *client = calloc(1, sizeof *client);
    if (!client) return fail(error, 0, "out of memory"), NULL;
    snprintf(client->endpoint, sizeof client->endpoint, "%s", endpoint);
    client->context = zmq_ctx_new();
    client->socket = client->context ? zmq_socket(client->context, ZMQ_DEALER) : NULL;
    char identity[64] = "client-c-";
    random_hex(identity + strlen(identity), 8);
    int linger = 0;
    if (!client->socket || zmq_setsockopt(client->socket, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(client->socket, ZMQ_ROUTING_ID, identity, strlen(identity)) != 0 ||
        zmq_connect(client->socket, endpoint) != 0) {
        fail(error, 0, "cannot connect to %s: %s", endpoint, zmq_strerror(zmq_errno()));
        sb_client_close(client);
        return NULL;
    }
    return client;
}

void sb_client_close(sb_client *client) {
    if (!client) return;
    if (client->socket) zmq_close(client->socket);
    if (client->context) zmq_ctx_term(client->context);
    free(client);
}

/* Packs and sends one envelope; 0 on success. */
static int send_envelope(sb_client *client, Stagebeam__V1__Envelope *envelope, sb_error *error) {
    envelope->protocol_version = STAGEBEAM__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    envelope->min_protocol_version = STAGEBEAM__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_OLDEST_SUPPORTED;
    size_t size = stagebeam__v1__envelope__get_packed_size(envelope);
    uint8_t *frame = malloc(size ? size : 1);
    if (!frame) return fail(error, 0, "out of memory"), -1;
    stagebeam__v1__envelope__pack(envelope, frame);
    int sent = zmq_send(client->socket, frame, size, 0);
    free(frame);
    if (sent < 0) return fail(error, 0, "send to %s failed: %s", client->endpoint, zmq_strerror(zmq_errno())), -1;
    return 0;
}

static int send_heartbeat(sb_client *client, sb_error *error) {
    Stagebeam__V1__Heartbeat beat = STAGEBEAM__V1__HEARTBEAT__INIT;
    Stagebeam__V1__Envelope envelope = STAGEBEAM__V1__ENVELOPE__INIT;
    envelope.body_case = STAGEBEAM__V1__ENVELOPE__BODY_HEARTBEAT;
    envelope.heartbeat = &beat;
    return send_envelope(client, &envelope, error);
}

/* The next envelope within `wait_ms`: 1 with `*out` set, 0 when none came, -1 on a socket error.
 * Undecodable frames are skipped. */
static int receive_envelope(sb_client *client, int wait_ms, Stagebeam__V1__Envelope **out, sb_error *error) {
    zmq_pollitem_t item = {client->socket, 0, ZMQ_POLLIN, 0};
    int ready = zmq_poll(&item, 1, wait_ms);
    if (ready < 0) return errno == EINTR ? 0 : (fail(error, 0, "poll failed: %s", zmq_strerror(zmq_errno())), -1);
    if (ready == 0) return 0;
    zmq_msg_t message;
    zmq_msg_init(&message);
    if (zmq_msg_recv(&message, client->socket, 0) < 0) {
        zmq_msg_close(&message);
        return fail(error, 0, "receive failed: %s", zmq_strerror(zmq_errno())), -1;
    }
    *out = stagebeam__v1__envelope__unpack(NULL, zmq_msg_size(&message), zmq_msg_data(&message));
    zmq_msg_close(&message);
    return *out ? 1 : 0;
}

/* Sends `request`, then waits for the envelope that `accept` takes (returning 1), heartbeating every
 * interval; `accept` returns a negative value to stop with `error` filled, 0 to go on, and sets
 * `resend` to send the request again (an "unknown" heartbeat answer). `accept` detaches what it
 * keeps from the envelope; the envelope is freed here. */
typedef int (*accept_fn)(Stagebeam__V1__Envelope *envelope, void *state, sb_error *error, int *resend);

static int exchange(sb_client *client, Stagebeam__V1__Envelope *request, int timeout_ms, accept_fn accept, void *state,
                    sb_error *error) {
    if (send_envelope(client, request, error) != 0) return -1;
    long long start = now_ms(), last_beat = start;
    for (;;) {
        long long now = now_ms();
        if (timeout_ms > 0 && now - start >= timeout_ms) {
            return fail(error, 0, "no answer from %s within %d ms", client->endpoint, timeout_ms), -1;
        }
        if (now - last_beat >= SB_HEARTBEAT_MS) {
            if (send_heartbeat(client, error) != 0) return -1;
            last_beat = now;
        }
        Stagebeam__V1__Envelope *envelope = NULL;
        int got = receive_envelope(client, SB_HEARTBEAT_MS, &envelope, error);
        if (got < 0) return -1;
        if (got == 0) continue;
        int resend = 0;
        int outcome = accept(envelope, state, error, &resend);
        stagebeam__v1__envelope__free_unpacked(envelope, NULL);
        if (outcome != 0) return outcome;
        if (resend && send_envelope(client, request, error) != 0) return -1;
    }
}

struct submit_state {
    const char *job_id;
    sb_event_fn on_event;
    void *user;
    Stagebeam__V1__JobResult **result;
};

static int accept_job(Stagebeam__V1__Envelope *envelope, void *opaque, sb_error *error, int *resend) {
    struct submit_state *state = opaque;
    switch (envelope->body_case) {
    case STAGEBEAM__V1__ENVELOPE__BODY_JOB_EVENT:
        if (state->on_event && strcmp(envelope->job_event->job_id, state->job_id) == 0) state->on_event(envelope->job_event, state->user);
        return 0;
    case STAGEBEAM__V1__ENVELOPE__BODY_JOB_RESULT: {
        Stagebeam__V1__JobResult *result = envelope->job_result;
        if (strcmp(result->job_id, state->job_id) != 0) return 0;
        /* Keep the result: detached, it outlives the envelope. */
        envelope->job_result = NULL;
        envelope->body_case = STAGEBEAM__V1__ENVELOPE__BODY__NOT_SET;
        *state->result = result;
        if (result->status == STAGEBEAM__V1__JOB_STATUS__JOB_STATUS_SUCCEEDED) return 1;
        fail(error, result->error ? result->error->code : STAGEBEAM__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "job %s failed: %s",
             result->job_id, result->error ? result->error->message : "(no error)");
        return -2; /* failed, result kept */
    }
    case STAGEBEAM__V1__ENVELOPE__BODY_ERROR:
        if (envelope->error->job_id[0] && strcmp(envelope->error->job_id, state->job_id) != 0) return 0;
        fail(error, envelope->error->code, "%s", envelope->error->message);
        return -1;
    case STAGEBEAM__V1__ENVELOPE__BODY_HEARTBEAT:
        *resend = !envelope->heartbeat->known;
        return 0;
    default:
        return 0;
    }
}

int sb_client_submit(sb_client *client, Stagebeam__V1__SubmitJob *job, sb_event_fn on_event, void *user, int timeout_ms,
                     Stagebeam__V1__JobResult **result, sb_error *error) {
    char fresh_id[40] = "";
    char *given_id = job->job_id;
    if (!job->job_id || !job->job_id[0]) {
        random_hex(fresh_id, 16);
        job->job_id = fresh_id;
    }
    *result = NULL;
    Stagebeam__V1__Envelope request = STAGEBEAM__V1__ENVELOPE__INIT;
    request.body_case = STAGEBEAM__V1__ENVELOPE__BODY_SUBMIT_JOB;
    request.submit_job = job;
    struct submit_state state = {job->job_id, on_event, user, result};
    int outcome = exchange(client, &request, timeout_ms, accept_job, &state, error);
    job->job_id = given_id;
    return outcome == 1 ? 0 : -1;
}

struct job_answer_state {
    const char *job_id;
    Stagebeam__V1__JobResult **result;
};

/* The JobResult (or the error) answering a GetJob or CancelJob about `job_id`. */
static int accept_job_answer(Stagebeam__V1__Envelope *envelope, void *opaque, sb_error *error, int *resend) {
    (void)resend;
    struct job_answer_state *state = opaque;
    if (envelope->body_case == STAGEBEAM__V1__ENVELOPE__BODY_ERROR) {
        if (envelope->error->job_id[0] && strcmp(envelope->error->job_id, state->job_id) != 0) return 0;
        fail(error, envelope->error->code, "%s", envelope->error->message);
        return -1;
    }
    if (envelope->body_case != STAGEBEAM__V1__ENVELOPE__BODY_JOB_RESULT || strcmp(envelope->job_result->job_id, state->job_id) != 0) {
        return 0;
    }
    *state->result = envelope->job_result;
    envelope->job_result = NULL;
    envelope->body_case = STAGEBEAM__V1__ENVELOPE__BODY__NOT_SET;
    return 1;
}

int sb_client_get_job(sb_client *client, const char *job_id, int timeout_ms, Stagebeam__V1__JobResult **result, sb_error *error) {
    Stagebeam__V1__GetJob get = STAGEBEAM__V1__GET_JOB__INIT;
    get.job_id = (char *)job_id;
    Stagebeam__V1__Envelope request = STAGEBEAM__V1__ENVELOPE__INIT;
    request.body_case = STAGEBEAM__V1__ENVELOPE__BODY_GET_JOB;
    request.get_job = &get;
    struct job_answer_state state = {job_id, result};
    *result = NULL;
    return exchange(client, &request, timeout_ms, accept_job_answer, &state, error) == 1 ? 0 : -1;
}

int sb_client_cancel(sb_client *client, const char *job_id, const char *reason, int timeout_ms, Stagebeam__V1__JobResult **result,
                     sb_error *error) {
    Stagebeam__V1__CancelJob cancel = STAGEBEAM__V1__CANCEL_JOB__INIT;
    cancel.job_id = (char *)job_id;
    if (reason) cancel.reason = (char *)reason;
    Stagebeam__V1__Envelope request = STAGEBEAM__V1__ENVELOPE__INIT;
    request.body_case = STAGEBEAM__V1__ENVELOPE__BODY_CANCEL_JOB;
    request.cancel_job = &cancel;
    struct job_answer_state state = {job_id, result};
    *result = NULL;
    return exchange(client, &request, timeout_ms, accept_job_answer, &state, error) == 1 ? 0 : -1;
}

static int accept_status(Stagebeam__V1__Envelope *envelope, void *opaque, sb_error *error, int *resend) {
    (void)resend;
    Stagebeam__V1__StatusReply **reply = opaque;
    if (envelope->body_case == STAGEBEAM__V1__ENVELOPE__BODY_ERROR) {
        fail(error, envelope->error->code, "%s", envelope->error->message);
        return -1;
    }
    if (envelope->body_case != STAGEBEAM__V1__ENVELOPE__BODY_STATUS_REPLY) return 0;
    *reply = envelope->status_reply;
    envelope->status_reply = NULL;
    envelope->body_case = STAGEBEAM__V1__ENVELOPE__BODY__NOT_SET;
    return 1;
}

int sb_client_status(sb_client *client, int timeout_ms, Stagebeam__V1__StatusReply **reply, sb_error *error) {
    Stagebeam__V1__StatusRequest status = STAGEBEAM__V1__STATUS_REQUEST__INIT;
    Stagebeam__V1__Envelope request = STAGEBEAM__V1__ENVELOPE__INIT;
    request.body_case = STAGEBEAM__V1__ENVELOPE__BODY_STATUS_REQUEST;
    request.status_request = &status;
    *reply = NULL;
    return exchange(client, &request, timeout_ms, accept_status, reply, error) == 1 ? 0 : -1;
}

int sb_read_file(const char *path, ProtobufCBinaryData *data, sb_error *error) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(error, 0, "cannot open %s: %s", path, strerror(errno)), -1;
    uint8_t *bytes = NULL;
    size_t size = 0, capacity = 0, got;
    do {
        if (size == capacity) {
            capacity = capacity ? capacity * 2 : 65536;
            uint8_t *grown = realloc(bytes, capacity);
            if (!grown) {
                free(bytes);
                fclose(f);
                return fail(error, 0, "out of memory reading %s", path), -1;
            }
            bytes = grown;
        }
        got = fread(bytes + size, 1, capacity - size, f);
        size += got;
    } while (got > 0);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(bytes);
        return fail(error, 0, "cannot read %s", path), -1;
    }
    data->data = bytes;
    data->len = size;
    return 0;
}

const char *sb_error_code_name(Stagebeam__V1__ErrorCode code) {
    static char name[64];
    const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value(&stagebeam__v1__error_code__descriptor, code);
    if (!value) return "unknown";
    const char *full = value->name; /* e.g. ERROR_CODE_NO_WORKER */
    if (strncmp(full, "ERROR_CODE_", 11) == 0) full += 11;
    size_t i = 0;
    for (; full[i] && i + 1 < sizeof name; i++) name[i] = (char)tolower((unsigned char)full[i]);
    name[i] = 0;
    return name;
}
