/*
 * stagebeam-submit-c: submits a question (and an image) to a coordinator, prints each stage event
 * on standard error as it comes, then the staged answer and the answer on standard output.
 *
 *   stagebeam-submit-c --coordinator tcp://127.0.0.1:5555 --question "How many red objects?" \
 *       --image examples/count.png [--beam N] [--seed S] [--max-stage-tokens T] [--method M]
 *       [--tournament random|bracket] [--job-id ID] [--timeout-s S] [--stream-tokens MS]
 *   stagebeam-submit-c --coordinator EP --get ID      (a job's result by id, printed alike)
 *   stagebeam-submit-c --coordinator EP --cancel ID   (cancels it; prints its status)
 *
 * --stream-tokens MS also prints the candidates' text while workers generate it, a piece per
 * candidate at most every MS milliseconds (the coordinator raises a value under 50 to 50): one line
 * "  STAGE candidate K (attempt A): TEXT" per piece, newlines shown as \n. Pieces of one candidate
 * and attempt concatenate to its text; a higher attempt (its worker was lost) starts it afresh.
 *
 * Exit status: 0 answered, 1 the job was refused, failed, cancelled or is unknown, 2 bad arguments,
 * 3 timed out, 4 (--get) the job has not finished yet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stagebeam_client.h"

static const char *stage_name(Stagebeam__V1__Stage stage) {
    switch (stage) {
    case STAGEBEAM__V1__STAGE__STAGE_SUMMARY: return "summary";
    case STAGEBEAM__V1__STAGE__STAGE_CAPTION: return "caption";
    case STAGEBEAM__V1__STAGE__STAGE_REASONING: return "reasoning";
    case STAGEBEAM__V1__STAGE__STAGE_CONCLUSION: return "conclusion";
    case STAGEBEAM__V1__STAGE__STAGE_ANSWER: return "answer";
    default: return "stage";
    }
}

static void print_event(const Stagebeam__V1__JobEvent *event, void *user) {
    (void)user;
    const char *stage = stage_name(event->stage);
    switch (event->kind_case) {
    case STAGEBEAM__V1__JOB_EVENT__KIND_STAGE_STARTED: fprintf(stderr, "> %s\n", stage); break;
    case STAGEBEAM__V1__JOB_EVENT__KIND_CANDIDATES_READY:
        fprintf(stderr, "  %zu %s candidates\n", event->candidates_ready->n_candidates, stage);
        break;
    case STAGEBEAM__V1__JOB_EVENT__KIND_VERDICT:
        fprintf(stderr, "  match: %u vs %u -> %u\n", event->verdict->first_index, event->verdict->second_index,
                event->verdict->winner_index);
        break;
    case STAGEBEAM__V1__JOB_EVENT__KIND_WINNER:
        fprintf(stderr, "  %s winner: candidate %u\n", stage, event->winner->index);
        break;
    case STAGEBEAM__V1__JOB_EVENT__KIND_CANDIDATE_TEXT:
        fprintf(stderr, "  %s candidate %u (attempt %u): ", stage, event->candidate_text->index, event->candidate_text->attempt);
        for (const char *c = event->candidate_text->text; *c; c++) {
            if (*c == '\n') fputs("\\n", stderr);
            else fputc(*c, stderr);
        }
        fputc('\n', stderr);
        break;
    default: break;
    }
    fflush(stderr);
}

static int usage(const char *problem) {
    fprintf(stderr, "stagebeam-submit-c: %s\nusage: stagebeam-submit-c --coordinator EP --question Q [--image FILE] [--beam N] "
                    "[--seed S] [--max-stage-tokens T] [--method stage|best-of-n|sentence|greedy] [--tournament random|bracket] "
                    "[--job-id ID] [--timeout-s S] [--stream-tokens MS]\n       stagebeam-submit-c --coordinator EP (--get ID | --cancel ID) [--timeout-s S]\n",
            problem);
    return 2;
}

static int parse_uint(const char *text, unsigned long long *out) {
    char *end = NULL;
    if (!text || !*text || *text == '-') return -1;
    *out = strtoull(text, &end, 10);
    return *end ? -1 : 0;
}

int main(int argc, char **argv) {
    const char *coordinator = NULL, *image = NULL, *get_id = NULL, *cancel_id = NULL;
    double timeout_s = 0;
    Stagebeam__V1__SubmitJob job = STAGEBEAM__V1__SUBMIT_JOB__INIT;
    job.stream_events = 1;
    for (int i = 1; i < argc; i++) {
        const char *option = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long number = 0;
        if (!value) return usage("every option takes a value");
        i++;
        if (!strcmp(option, "--coordinator")) coordinator = value;
        else if (!strcmp(option, "--question")) job.question = (char *)value;
        else if (!strcmp(option, "--image")) image = value;
        else if (!strcmp(option, "--job-id")) job.job_id = (char *)value;
        else if (!strcmp(option, "--get")) get_id = value;
        else if (!strcmp(option, "--cancel")) cancel_id = value;
        else if (!strcmp(option, "--beam")) {
            if (parse_uint(value, &number) || number < 1) return usage("--beam must be an integer >= 1");
            job.beam = (uint32_t)number;
        } else if (!strcmp(option, "--seed")) {
            if (parse_uint(value, &number)) return usage("--seed must be an integer >= 0");
            job.seed = number;
        } else if (!strcmp(option, "--max-stage-tokens")) {
            if (parse_uint(value, &number) || number < 1) return usage("--max-stage-tokens must be an integer >= 1");
            job.max_stage_tokens = (uint32_t)number;
        } else if (!strcmp(option, "--method")) {
            if (!strcmp(value, "stage")) job.method = STAGEBEAM__V1__METHOD__METHOD_STAGE;
            else if (!strcmp(value, "best-of-n")) job.method = STAGEBEAM__V1__METHOD__METHOD_BEST_OF_N;
            else if (!strcmp(value, "sentence")) job.method = STAGEBEAM__V1__METHOD__METHOD_SENTENCE;
            else if (!strcmp(value, "greedy")) job.method = STAGEBEAM__V1__METHOD__METHOD_GREEDY;
            else return usage("--method must be stage, best-of-n, sentence or greedy");
        } else if (!strcmp(option, "--tournament")) {
            if (!strcmp(value, "random")) job.tournament = STAGEBEAM__V1__TOURNAMENT__TOURNAMENT_RANDOM;
            else if (!strcmp(value, "bracket")) job.tournament = STAGEBEAM__V1__TOURNAMENT__TOURNAMENT_BRACKET;
            else return usage("--tournament must be random or bracket");
        } else if (!strcmp(option, "--stream-tokens")) {
            if (parse_uint(value, &number) || number < 1) return usage("--stream-tokens must be an integer >= 1 (milliseconds)");
            job.stream_candidate_text = 1;
            job.candidate_text_interval_ms = (double)number;
        } else if (!strcmp(option, "--timeout-s")) {
            timeout_s = atof(value);
        } else {
            fprintf(stderr, "stagebeam-submit-c: unknown option %s\n", option);
            return usage("see the options below");
        }
    }
    if (!coordinator || !(job.question || get_id || cancel_id)) return usage("--coordinator and --question (or --get, --cancel) are required");

    sb_error error = {0};
    if (image && sb_read_file(image, &job.image, &error) != 0) {
        fprintf(stderr, "stagebeam-submit-c: %s\n", error.message);
        return 1;
    }
    sb_client *client = sb_client_open(coordinator, &error);
    if (!client) {
        fprintf(stderr, "stagebeam-submit-c: %s\n", error.message);
        return 1;
    }
    Stagebeam__V1__JobResult *result = NULL;
    int status, timeout_ms = (int)(timeout_s * 1000);
    if (cancel_id) status = sb_client_cancel(client, cancel_id, "stagebeam-submit-c --cancel", timeout_ms, &result, &error);
    else if (get_id) status = sb_client_get_job(client, get_id, timeout_ms, &result, &error);
    else status = sb_client_submit(client, &job, print_event, NULL, timeout_ms, &result, &error);
    int exit_code = 0;
    if (status == 0 && result->status != STAGEBEAM__V1__JOB_STATUS__JOB_STATUS_SUCCEEDED) {
        /* A job asked for by id: cancelled, failed, or not finished yet. */
        const ProtobufCEnumValue *name = protobuf_c_enum_descriptor_get_value(&stagebeam__v1__job_status__descriptor, result->status);
        printf("job %s: %s%s%s\n", result->job_id, name ? name->name : "unknown status", result->error ? ": " : "",
               result->error ? result->error->message : "");
        exit_code = result->status == STAGEBEAM__V1__JOB_STATUS__JOB_STATUS_QUEUED || result->status == STAGEBEAM__V1__JOB_STATUS__JOB_STATUS_RUNNING
                        ? 4
                        : 1;
    } else if (status == 0) {
        for (size_t i = 0; i < result->n_stages; i++) printf("%s%s", i ? "\n\n" : "", result->stages[i]->text);
        printf("\n\nanswer: %s\n", result->answer);
        fprintf(stderr, "job %s: %u candidates, %u judge calls, %.1f s\n", result->job_id, result->counts ? result->counts->candidates : 0,
                result->counts ? result->counts->judge_calls : 0, result->total_ms / 1000);
    } else {
        fprintf(stderr, "stagebeam-submit-c: %s%s%s\n", error.code ? sb_error_code_name(error.code) : "", error.code ? ": " : "",
                error.message);
        exit_code = error.code ? 1 : 3;
    }
    if (result) stagebeam__v1__job_result__free_unpacked(result, NULL);
    sb_client_close(client);
    free(job.image.data);
    return exit_code;
}
