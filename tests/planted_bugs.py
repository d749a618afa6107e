"""Plant each bug the run-contract tests must catch, in a copy of the repository, and run those tests.

    python tests/planted_bugs.py [SUBSTRING ...]

Every entry names a bug, the file and the exact text it replaces, and the tests meant to fail. The copy lives
in a temporary folder (the working tree is never touched); exit status 1 when a planted bug went unnoticed.
See docs/testing.md.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RC = "tests/test_run_contract.py::"
TE = "tests/test_teacher.py::"
IF = "tests/test_inflight.py::"
OA = "tests/test_openai_backend.py::"
Q = "tests/test_qwen.py::"
SO = "tests/test_server_outages.py::"
LY = "tests/test_layouts.py::"
NL = "tests/test_negatives_llm.py::"
AU = "tests/test_audit.py::"
PE = "tests/test_page_escaping.py::"
FH = "tests/test_first_hour.py::"
VA = "tests/test_variants.py::"
FR = "tests/test_format_rules.py::"
RF = "tests/test_release_fidelity.py::"
AL = "tests/test_algorithms.py::"
PR = "tests/test_prompts.py::"
DC = "tests/test_dataset_card.py::"
ST = "tests/test_stats_table.py::"
IN = "tests/test_inspect.py::"
DV = "tests/test_devtools_commands.py::"
NA = "tests/test_negatives_analysis.py::"
NE = "tests/test_negatives_evalfile.py::"
NV = "tests/test_negatives_vocabulary.py::"
NB = "tests/test_negatives_builder.py::"
ON = "tests/test_ontology.py::"
NS = "tests/test_negatives_samplers.py::"
CR = "tests/test_command_reference.py::"
BF = "tests/test_bench_files.py::"
BR = "tests/test_bench_rules.py::"
BS = "tests/test_bench_stage.py::"
RP = "tests/test_report_page.py::"
MG = "tests/test_mutation_groups.py::"
EW = "tests/test_embedded_world.py::"
LI = "tests/test_local_inputs.py::"
KP = "tests/test_core_plugins_cli.py::"
ET = "tests/test_embedded_teachers.py::"
RCM = "tests/test_report_compare.py::"
IF_ = "tests/test_io_formats.py::"
ER = "tests/test_export_run.py::"
IS = "tests/test_io_sources.py::"

PLANTS = [
    (
        "shard written in place (no tmp/fsync/rename)",
        "afcot_core/shards.py",
        """    tmp = path.with_name(path.name + tmp_suffix)
    try:""",
        """    tmp = path
    try:""",
        [
            RC + "test_a_shard_is_fsynced_under_a_temporary_name_renamed_and_marked_done_last",
            RC + "test_a_sink_that_fails_midway_leaves_neither_a_shard_nor_a_tmp",
        ],
    ),
    (
        "no fsync",
        "afcot_core/shards.py",
        """        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace""",
        """        os.replace""",
        [RC + "test_a_shard_is_fsynced_under_a_temporary_name_renamed_and_marked_done_last"],
    ),
    (
        "done marker before the tar",
        "afcot_core/shards.py",
        """        atomic_write(shard, lambda tmp: self.sink.write(tmp, accepted))""",
        """        atomic_write(self._marker_path(index), lambda tmp: tmp.write_bytes(b"{}"))
        atomic_write(shard, lambda tmp: self.sink.write(tmp, accepted))""",
        [RC + "test_a_shard_is_fsynced_under_a_temporary_name_renamed_and_marked_done_last"],
    ),
    (
        "failed path removed",
        "afcot_core/stages/generator.py",
        """        except TeacherError as exc:
            return record("failed", reason=f"teacher: {exc}")""",
        """""",
        ["tests/test_faults.py::test_persistent_faults_fail_the_run_and_a_plain_rerun_completes"],
    ),
    (
        "cache key ignores the teacher scope",
        "afcot_core/cache.py",
        """        return digest([scope, prompt, prefix, audio_identity(audio)])""",
        """        return digest([prompt, prefix, audio_identity(audio)])""",
        [RC + "test_cache_keys_depend_on_the_teacher_scope_the_attempt_and_the_seed"],
    ),
    (
        "cache key ignores the attempt",
        "afcot_core/teacher.py",
        '''f"{attempt}:{seed}:{prompt}"''',
        '''f"{seed}:{prompt}"''',
        [RC + "test_cache_keys_depend_on_the_teacher_scope_the_attempt_and_the_seed"],
    ),
    (
        "cache key ignores the seed",
        "afcot_core/teacher.py",
        '''f"{attempt}:{seed}:{prompt}"''',
        '''f"{attempt}:{prompt}"''',
        [RC + "test_cache_keys_depend_on_the_teacher_scope_the_attempt_and_the_seed"],
    ),
    (
        "no cache flush before the shard commit",
        "afcot_core/stages/generator.py",
        """            await self.cache.flush()  # the replies""",
        """            pass  # the replies""",
        [RC + "test_replies_are_committed_before_the_shard_that_rests_on_them"],
    ),
    (
        "fingerprint ignores prompt hashes",
        "afcot_core/runner.py",
        """    fingerprint = digest({**doc, "recipe": catalog.portable(identity)})""",
        """    fingerprint = digest({**doc, "recipe": catalog.portable(identity), "prompts": {}})""",
        [RC + "test_the_fingerprint_covers_prompt_texts"],
    ),
    (
        "micro-batcher never waits max_wait_ms",
        "afcot_core/batcher.py",
        """        size, wait = self._batching.max_batch, self._batching.max_wait_ms / 1000""",
        """        size, wait = self._batching.max_batch, 0""",
        [RC + "test_the_micro_batcher_waits_max_wait_ms_for_more_requests"],
    ),
    (
        "1: a failing request fails its batch-mates",
        "afcot_core/batcher.py",
        """            if len(batch) > 1 and not isinstance(exc, NOT_RETRIED):""",
        """            if False:""",
        ["tests/test_teacher.py::test_an_engine_error_fails_only_the_failing_request"],
    ),
    (
        "1: no retries",
        "afcot_core/teacher.py",
        """        for retry in range(self.retry.retries + 1):""",
        """        for retry in range(1):""",
        ["tests/test_faults.py::test_transient_faults_give_the_same_shards_as_a_fault_free_run"],
    ),
    (
        "2: a shard with failures marked complete",
        "afcot_core/shards.py",
        """        return self.counts.failed == 0""",
        """        return True""",
        [
            RC + "test_a_shard_with_failed_items_is_marked_incomplete_and_redone",
            "tests/test_faults.py::test_persistent_faults_fail_the_run_and_a_plain_rerun_completes",
        ],
    ),
    (
        "2: replies of rejected items cached",
        "afcot_core/stages/generator.py",
        """        elif record.verdict == "accepted":""",
        """        elif True:""",
        ["tests/test_faults.py::test_garbled_replies_are_never_accepted_nor_replayed"],
    ),
    (
        "2: malformed JSON replies cached",
        "afcot_core/protocols.py",
        """                self._unusable.add(id(reply))""",
        """                pass""",
        ["tests/test_faults.py::test_garbled_replies_are_never_accepted_nor_replayed"],
    ),
    (
        "3: corrupt cache not set aside",
        "afcot_core/cache.py",
        """        except sqlite3.DatabaseError as exc:
            aside""",
        """        except ZeroDivisionError as exc:
            aside""",
        [RC + "test_a_corrupt_replay_cache_is_set_aside_with_a_warning_naming_it"],
    ),
    (
        "3: cache switch in the fingerprint",
        "afcot_core/stages/generate.py",
        """RUN_ONLY_SETTINGS = ("concurrency", "cache", """,
        """RUN_ONLY_SETTINGS = ("concurrency", """,
        [RC + "test_turning_the_cache_off_keeps_the_fingerprint_and_the_data"],
    ),
    (
        "4: no engine timeout",
        "afcot_core/batcher.py",
        """self._run_batch([r for r, _ in batch]), self._timeout_s)""",
        """self._run_batch([r for r, _ in batch]), None)""",
        [RC + "test_a_hanging_engine_times_out_and_is_retried_then_fails_the_request"],
    ),
    (
        "4: engine calls in joined threads (SIGINT waits for a hung call)",
        "afcot_core/teacher.py",
        """            return await in_daemon_thread(self.generate, requests)""",
        """            return await asyncio.to_thread(self.generate, requests)""",
        [RC + "test_sigint_stops_a_run_with_a_hanging_teacher_promptly_with_exit_130"],
    ),
    (
        "5: no prose check",
        "plugins/afcot_paper/validators.py",
        """    prose: bool = True""",
        """    prose: bool = False""",
        ["tests/test_faults.py::test_garbled_replies_are_never_accepted_nor_replayed"],
    ),
    (
        "6: resume trusts markers",
        "afcot_core/shards.py",
        "        for expected in marker.files:",
        "        for expected in []:",
        [RC + "test_resume_redoes_a_changed_a_truncated_and_a_deleted_shard"],
    ),
    (
        "6: resume checks size only",
        "afcot_core/shards.py",
        "or file_digest(file) != expected:",
        ":",
        [RC + "test_resume_redoes_a_changed_a_truncated_and_a_deleted_shard"],
    ),
    (
        "8: refused run writes the lock first",
        "afcot_core/runner.py",
        """    check_fingerprint(out_dir / "generate", lock["fingerprint"])
    out_dir.mkdir""",
        """    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "recipe.lock.toml").write_text("x")
    out_dir.mkdir""",
        [RC + "test_a_refused_run_writes_nothing"],
    ),
    (
        "8: all plugin versions in the fingerprint",
        "afcot_core/runner.py",
        """        "plugins": {name: plugins.versions.get(name, "") for name in sorted(used)},""",
        """        "plugins": dict(sorted(plugins.versions.items())),""",
        [RC + "test_an_unrelated_plugin_does_not_change_the_fingerprint"],
    ),
    (
        "8: rank not validated",
        "afcot_core/runner.py",
        """    if w < 1 or not 0 <= r < w:""",
        """    if False:""",
        [RC + "test_bad_rank_or_world_size_is_bad_input_and_writes_nothing"],
    ),
    (
        "8: no lock per rank",
        "afcot_core/runner.py",
        """            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)""",
        """            pass""",
        [RC + "test_a_second_process_with_the_same_rank_is_refused"],
    ),
    (
        "9: trace in completion order",
        "afcot_core/protocols.py",
        """        lane = self._lane()
        slot = len(lane.entries)
        lane.entries.append(None)  # the place of this call in the trace is taken when it is asked
        reply = await teacher.ask(prompt, audio, attempt=attempt, seed=seed)""",
        """        reply = await teacher.ask(prompt, audio, attempt=attempt, seed=seed)
        lane = self._lane()
        slot = len(lane.entries)
        lane.entries.append(None)""",
        [RC + "test_the_trace_keeps_the_order_in_which_calls_were_asked"],
    ),
    (
        "9: latencies stored in records",
        "afcot_core/shards.py",
        """        records = [canonical(r) for r in records]""",
        """        pass""",
        [
            RC + "test_stored_records_carry_no_wall_clock_or_cache_facts",
            "tests/test_generate.py::test_replay_cache_answers_every_call_of_a_redone_shard",
        ],
    ),
    (
        "13: a bug becomes a failed record",
        "afcot_core/stages/generator.py",
        """        except TeacherError as exc:""",
        """        except Exception as exc:""",
        [RC + "test_a_programming_error_stops_the_run_instead_of_failing_items"],
    ),
    (
        "release: JSON repaired",
        "afcot_core/jsonreply.py",
        """    if getattr(schema, "json_parse", None) == "release":""",
        """    if False:""",
        ["tests/test_release_fidelity.py::test_release_json_is_one_strict_loads_with_no_repair_and_no_re_ask"],
    ),
    (
        "release: malformed JSON re-asked",
        "plugins/afcot_paper/algorithms.py",
        """            ctx.json_retries = 0""",
        """            pass""",
        ["tests/test_release_fidelity.py::test_release_json_is_one_strict_loads_with_no_repair_and_no_re_ask"],
    ),
    (
        "release: gate passes only truthy values",
        "plugins/afcot_paper/algorithms.py",
        """            passed = not release.gate_says_no(reply.require_step_by_step)""",
        """            passed = truthy(reply.require_step_by_step)""",
        ["tests/test_release_fidelity.py::test_release_gate_rejects_only_on_its_listed_values"],
    ),
    (
        "release: validation read leniently",
        "plugins/afcot_paper/release.py",
        """    return any(value == yes for yes in VALIDATION_YES)""",
        """    return str(value).strip().lower() in ("1", "true", "yes")""",
        ["tests/test_release_fidelity.py::test_release_validation_counts_only_its_listed_values"],
    ),
    (
        "release: stop rule ignores case",
        "plugins/afcot_paper/algorithms.py",
        """        if reply.answer != "unsure":""",
        """        if reply.answer.strip().lower() != "unsure":""",
        ["tests/test_release_fidelity.py::test_release_alg7_stops_on_any_answer_that_is_not_exactly_unsure"],
    ),
    (
        "release: accept rule strips the prediction",
        "plugins/afcot_paper/validators.py",
        """            if release.accepts(evidence.prediction or "", """,
        """            if release.accepts((evidence.prediction or "").strip(), """,
        ["tests/test_release_fidelity.py::test_release_accept_rule_is_the_released_expression"],
    ),
    (
        "release: summary example reworded",
        "plugins/afcot_paper/prompts/release/summary.txt",
        """one or more bird sqauwking. I will first check""",
        """one or several birds squawking. I will first check""",
        ["tests/test_release_fidelity.py::test_the_summary_example_is_the_released_text_word_for_word"],
    ),
    (
        "release: formatted_question not kept",
        "afcot_core/records.py",
        """KEPT_NOTES = ("formatted_question", "sub_questions")""",
        """KEPT_NOTES = ("sub_questions",)""",
        ["tests/test_release_fidelity.py::test_records_keep_formatted_question_and_sub_questions"],
    ),
    (
        "interchange: sound relative to the export",
        "plugins/afcot_io/export.py",
        """if base else str(audio_dir / c.sound))""",
        """if base else f"audio/{c.sound}")""",
        ["tests/test_interchange.py::test_an_exported_sound_opens_from_another_working_directory"],
    ),
    (
        "interchange: duration not measured",
        "plugins/afcot_io/export.py",
        """                               duration=duration_of(audio, where))""",
        """                               duration=0.0)""",
        ["tests/test_interchange.py::test_export_then_import_round_trips_with_absolute_sound_and_measured_duration"],
    ),
    (
        "interchange: multi-turn written with a string sound",
        "plugins/afcot_io/formats.py",
        """    listed = len(conv.turns) > 1""",
        """    listed = False""",
        ["tests/test_interchange.py::test_multi_turn_and_multi_audio_are_written_in_the_list_form"],
    ),
    (
        "interchange: <sound> stripped only at the start",
        "plugins/afcot_io/formats.py",
        """        text = text.replace(f"{token}\\n", "").replace(f"\\n{token}", "").replace(token, "")""",
        """        text = text.removeprefix(f"{token}\\n")""",
        ["tests/test_interchange.py::test_string_sound_reads_two_turns_and_drops_the_placeholder_wherever_it_is"],
    ),
    (
        "interchange: a string sound read past its second turn",
        "plugins/afcot_io/formats.py",
        """            pairs = [(strip_placeholders(user), assistant.rstrip())]""",
        """            pairs = [(strip_placeholders(u), a.rstrip()) for u, a in pairs]""",
        ["tests/test_interchange.py::test_string_sound_reads_two_turns_and_drops_the_placeholder_wherever_it_is"],
    ),
    (
        "interchange: list sound refused",
        "plugins/afcot_io/formats.py",
        """        elif isinstance(sound, list) and sound:""",
        """        elif False:""",
        ["tests/test_interchange.py::test_list_sound_keeps_every_turn_of_one_clip_and_skips_text_only_and_multi_audio_records"],
    ),
    (
        "interchange: model-card layout inline",
        "afcot_core/template.py",
        """    if options and layout == "inline":""",
        """    if options:""",
        ["tests/test_interchange.py::test_the_model_card_layout_is_the_released_inference_prompt"],
    ),
    (
        "af2: channels averaged",
        "plugins/afcot_flamingo/af2/features.py",
        """np.ascontiguousarray(wave[:, 0])""",
        """wave.mean(axis=1)""",
        ["tests/test_interchange.py::test_af2_reads_channel_0_of_a_stereo_file_as_released"],
    ),
    (
        "af2: target not stripped",
        "plugins/afcot_flamingo/af2/text.py",
        """{output.lower().strip()}""",
        """{output.lower()}""",
        ["tests/test_interchange.py::test_af2_training_text_strips_the_target_as_released"],
    ),
    # teachers on servers and engines (docs/scaling.md)
    (
        "T1: a re-ask takes its trace slot when the previous reply arrives (no lanes)",
        "afcot_core/protocols.py",
        """        lane = self._lane()""",
        """        lane = self._root""",
        [SO + "test_replies_in_random_order_give_byte_identical_shards",
         TE + "test_a_branch_s_later_calls_keep_their_place_in_the_trace_whatever_replies_come_first"],
    ),
    (
        "T2: a server that is down retried blindly (no probe, no outage wait)",
        "plugins/afcot_qwen/openai_backend.py",
        """            if unreachable and not await self._check(server, problem):""",
        """            if False:""",
        [SO + "test_a_killed_server_restarted_later_costs_nothing",
         SO + "test_a_dead_server_among_two_leaves_the_rotation_and_is_probed_not_retried"],
    ),
    (
        "T2: waiting requests never fail (no outage budget)",
        "plugins/afcot_qwen/openai_backend.py",
        """            if left <= 0:""",
        """            if False:""",
        [SO + "test_a_server_that_never_comes_back_fails_the_run_after_the_outage_budget"],
    ),
    (
        "T3: a dead engine retried like a busy one",
        "afcot_core/batcher.py",
        """NOT_RETRIED: tuple[type[BaseException], ...] = (*PROGRAMMING_ERRORS, EngineDead)""",
        """NOT_RETRIED: tuple[type[BaseException], ...] = PROGRAMMING_ERRORS""",
        ["tests/test_engine_fatal.py::test_a_dead_engine_stops_the_run_at_once_and_marks_nothing_done",
         TE + "test_a_dead_engine_is_neither_split_nor_retried"],
    ),
    (
        "T3: a vLLM EngineDeadError not recognised",
        "plugins/afcot_qwen/vllm_backend.py",
        """        if is_dead_engine(exc):""",
        """        if False:""",
        ["tests/test_engine_fatal.py::test_a_dead_engine_stops_the_run_at_once_and_marks_nothing_done"],
    ),
    (
        "T3: scheduling engine_args fingerprinted",
        "plugins/afcot_qwen/config.py",
        """    "enable_chunked_prefill", "max_num_seqs",""",
        """    "enable_chunked_prefill",""",
        [Q + "test_vllm_engine_arguments_pass_through_and_scheduling_ones_stay_out_of_the_fingerprint"],
    ),
    (
        "T3: extra_body not sent",
        "plugins/afcot_qwen/openai_backend.py",
        """"skip_special_tokens": False, **c.extra_body, **c.extra_run_body,""",
        """"skip_special_tokens": False, **c.extra_run_body,""",
        [OA + "test_extra_body_goes_in_every_request_and_only_reply_changing_fields_are_fingerprinted"],
    ),
    (
        "T4: skip_special_tokens not sent (the server strips a special </think>)",
        "plugins/afcot_qwen/openai_backend.py",
        """                                "skip_special_tokens": False, **c.extra_body""",
        """                                **c.extra_body""",
        [OA + "test_the_reply_is_read_after_the_last_think_whatever_the_tokenizer_marks_special"],
    ),
    (
        "T4: a prefixed request without the empty think block",
        "plugins/afcot_qwen/prompts.py",
        """    return (EMPTY_THINK if enable_thinking is False else "") + request.prefix""",
        """    return request.prefix""",
        [OA + "test_a_prefixed_request_is_the_in_process_prompt_token_for_token"],
    ),
    (
        "T4: the reply after the first </think>",
        "plugins/afcot_qwen/prompts.py",
        """        text = text.rpartition(THINK_END)[2]""",
        """        text = text.partition(THINK_END)[2] or text""",
        [Q + "test_the_reply_rule_takes_the_text_after_the_last_think_without_control_tokens",
         Q + "test_vllm_replies_cut_the_thinking_of_qwen3_and_not_of_omni"],
    ),
    (
        "T4: <think> kept on the vllm backend",
        "plugins/afcot_qwen/vllm_backend.py",
        '    role = "llm"\n    thinking = True',
        '    role = "llm"',
        [Q + "test_vllm_replies_cut_the_thinking_of_qwen3_and_not_of_omni"],
    ),
    (
        "T5: greedy requests carry the caller's seed",
        "afcot_core/teacher.py",
        """        request = Request(prompt, audio, prefix, seed if self.sampled else None)""",
        """        request = Request(prompt, audio, prefix, seed)""",
        [IF + "test_a_request_carries_a_seed_only_when_its_teacher_samples_and_is_shared_only_when_equal"],
    ),
    (
        "T5: a teacher that samples only by its config counted as greedy",
        "afcot_core/teacher.py",
        """        sampling = self._sampling if self._sampling is not None else getattr(self, "config", None)""",
        """        sampling = self._sampling""",
        [IF + "test_a_request_carries_a_seed_only_when_its_teacher_samples_and_is_shared_only_when_equal"],
    ),
    (
        "T5: the in-flight key leaves out the seed",
        "afcot_core/teacher.py",
        """        text = await self._inflight.run(request, lambda: self._submit(request))""",
        """        text = await self._inflight.run((prompt, prefix, audio), lambda: self._submit(request))""",
        [IF + "test_identical_requests_go_once_and_seeds_matter_only_when_sampling",
         IF + "test_a_request_carries_a_seed_only_when_its_teacher_samples_and_is_shared_only_when_equal"],
    ),
    (
        "T6: forked engine processes outlive afcot",
        "plugins/afcot_qwen/vllm_backend.py",
        """        os.register_at_fork(after_in_child=die_with_parent)""",
        """        pass""",
        [Q + "test_processes_forked_after_an_engine_starts_die_with_their_parent"],
    ),
    (
        "T6: vLLM logs on stdout",
        "plugins/afcot_qwen/vllm_backend.py",
        """                                "stream": "ext://sys.stderr"}},""",
        """                                "stream": "ext://sys.stdout"}},""",
        [Q + "test_vllm_logs_go_to_stderr"],
    ),
    (
        "T7: round robin over base_urls lost",
        "plugins/afcot_qwen/openai_backend.py",
        """                return up[next(self._turn) % len(up)]""",
        """                return up[0]""",
        [OA + "test_requests_go_round_robin_over_the_servers"],
    ),
    (
        "T7: the per-server token limit dropped",
        "plugins/afcot_qwen/openai_backend.py",
        """TokenBudget(self.config.max_requests_per_server,
                                                 self.config.max_tokens_per_server))""",
        """TokenBudget(self.config.max_requests_per_server))""",
        [OA + "test_the_per_server_token_limit_bounds_what_is_in_flight"],
    ),
    (
        "T7: the config seed instead of the request's (openai)",
        "plugins/afcot_qwen/openai_backend.py",
        """            body["seed"] = c.seed if request.seed is None else request.seed""",
        """            body["seed"] = c.seed""",
        [OA + "test_a_sampled_request_carries_its_own_seed_and_a_greedy_one_none"],
    ),
    (
        "T7: the config seed instead of the request's (vllm)",
        "plugins/afcot_qwen/vllm_backend.py",
        """             "seed": c.seed if r.seed is None else r.seed,""",
        """             "seed": c.seed,""",
        [Q + "test_vllm_requests_carry_their_own_seed_only_when_sampling_and_keep_special_tokens"],
    ),
    (
        "T7: batches padded on the right (transformers)",
        "plugins/afcot_qwen/hf.py",
        'tok.padding_side = "left"',
        'tok.padding_side = "right"',
        [Q + "test_a_batch_is_padded_on_the_left_so_each_reply_is_the_one_it_gets_alone"],
    ),
    (
        "T7: off-by-one in the in-flight token budget",
        "plugins/afcot_qwen/budget.py",
        """self.tokens + cost <= self.max_tokens""",
        """self.tokens + cost < self.max_tokens""",
        ["tests/test_inflight.py::test_requests_that_fill_the_token_budget_exactly_are_admitted_together"],
    ),
    (
        "a transformer block left out of the FSDP units",
        "plugins/afcot_flamingo/training/parallel.py",
        """    for block in blocks:
        fully_shard(block, **options)""",
        """    for block in blocks[1:]:
        fully_shard(block, **options)""",
        ["tests/test_sharded_training.py::test_every_block_is_its_own_fsdp_unit"],
    ),
    (
        "fsdp gradients never reduced across ranks",
        "plugins/afcot_flamingo/training/parallel.py",
        """        model.set_requires_gradient_sync(sync)""",
        """        model.set_requires_gradient_sync(False)""",
        ["tests/test_af3_trainer.py::test_two_processes_match_one_process_under_ddp_and_fsdp"],
    ),
    (
        "rank 0's weights not broadcast to the sharded ranks",
        "plugins/afcot_flamingo/training/parallel.py",
        """    if group.world > 1:
        set_model_state_dict(""",
        """    if group.world > 99:
        set_model_state_dict(""",
        ["tests/test_af3_trainer.py::test_two_processes_match_one_process_under_ddp_and_fsdp"],
    ),
    (
        "the loss predicts each labelled token from its own position",
        "plugins/afcot_flamingo/training/loss.py",
        """    states, wanted = hidden[:, :-1][keep], targets[keep]""",
        """    states, wanted = hidden[:, 1:][keep], targets[keep]""",
        ["tests/test_sharded_training.py::test_chunked_cross_entropy_equals_the_models_own_loss",
         "tests/test_sharded_training.py::test_cross_entropy_counts_only_the_labelled_next_tokens"],
    ),
    (
        "activation checkpointing silently skipped",
        "plugins/afcot_flamingo/training/parallel.py",
        """        block.forward = functools.partial(checkpoint, block.forward, use_reentrant=False)""",
        """        block.forward = functools.partial(block.forward)""",
        ["tests/test_sharded_training.py::test_checkpointed_blocks_keep_less_and_give_the_same_gradients"],
    ),
    (
        "the scheduler not restored on resume",
        "plugins/afcot_flamingo/training/state.py",
        """    scheduler.load_state_dict(mine["scheduler"])""",
        """    scheduler.load_state_dict(scheduler.state_dict())""",
        ["tests/test_sharded_training.py::test_a_killed_sharded_training_resumes_with_the_same_loss_sequence"],
    ),
    (
        "the random generators not restored on resume",
        "plugins/afcot_flamingo/training/loop.py",
        """            state.set_rng(generators)""",
        """            pass""",
        ["tests/test_sharded_training.py::test_a_killed_sharded_training_resumes_with_the_same_loss_sequence"],
    ),
    (
        "AF2's frozen embedding rows learn",
        "plugins/afcot_flamingo/af2/trainer.py",
        """        self.model.zero_frozen_rows()""",
        """        pass""",
        ["tests/test_af2_trainer.py::test_training_lowers_the_loss_and_a_killed_run_resumes_on_the_same_curve"],
    ),
    (
        "the memory plan forgets the optimiser's sharding",
        "plugins/afcot_flamingo/training/memory.py",
        """        optimiser = 0 if s.cpu_offload else 8 * a.trainable / n""",
        """        optimiser = 0 if s.cpu_offload else 8 * a.trainable""",
        ["tests/test_memory_plan.py::test_weights_gradients_and_optimiser_bytes_are_the_tensors_storage"],
    ),
    (
        "a plan that does not fit still runs",
        "afcot_core/runner.py",
        """    if refused:
        raise BadInput("cannot start:""",
        """    if refused and False:
        raise BadInput("cannot start:""",
        ["tests/test_memory_plan.py::test_a_run_that_does_not_fit_is_refused_before_anything_loads"],
    ),
    (
        "a checkpoint of another world size resumed",
        "plugins/afcot_flamingo/training/loop.py",
        """    if made != world:""",
        """    if made != world and False:""",
        ["tests/test_af3_trainer.py::test_two_processes_match_one_process_under_ddp_and_fsdp"],
    ),
    (
        "af2 audio: the AF2 student trains on the mean of the channels",
        "plugins/afcot_flamingo/af2/trainer.py",
        """    @reads_audio(training_wave)  # channel 0 of a stereo file, as the released AF2 data path reads it
""",
        """""",
        [LY + "test_the_af2_student_trains_on_channel_0_of_a_stereo_file"],
    ),
    (
        "af2 audio: the other students train on channel 0",
        "plugins/afcot_flamingo/training/data.py",
        """    return resample(wave.mean(axis=1), sr, SAMPLE_RATE)""",
        """    return resample(wave[:, 0], sr, SAMPLE_RATE)""",
        [LY + "test_other_students_keep_the_mean_of_the_channels"],
    ),
    (
        "af2 audio: the AF2 answerer hears the mean of the channels",
        "plugins/afcot_flamingo/af2/answer.py",
        """            wave = release_wave(source, SAMPLE_RATE)""",
        """            wave = __import__("afcot_core.audio").audio.load_at(ref, SAMPLE_RATE)""",
        [LY + "test_af2_answers_from_channel_0_of_a_stereo_file"],
    ),
    (
        "layout: training ignores train.prompt_layout",
        "plugins/afcot_flamingo/training/data.py",
        """        example = source.decode(next(streams[live[pick]]), read, layout)""",
        """        example = source.decode(next(streams[live[pick]]), read, "inline")""",
        [LY + "test_a_train_recipe_lays_out_the_options_as_the_model_card"],
    ),
    (
        "layout: evaluation ignores evaluate.prompt_layout",
        "plugins/afcot_benchmarks/stage.py",
        """trained_prompt(item, self.settings.cot, self.settings.prompt_layout)""",
        """trained_prompt(item, self.settings.cot)""",
        [LY + "test_the_evaluate_stage_asks_in_the_recipe_layout"],
    ),
    (
        "layout: predictions of another layout resumed",
        "plugins/afcot_benchmarks/stage.py",
        """                identity["prompt_layout"] = self.settings.prompt_layout""",
        """                pass""",
        [LY + "test_the_evaluate_stage_asks_in_the_recipe_layout"],
    ),
    (
        "layout: AF-Reasoning-Eval keeps its native layout",
        "plugins/afcot_benchmarks/af_eval.py",
        """        if layout == "inline":
            return self.prompt(item, cot)""",
        """        if True:
            return self.prompt(item, cot)""",
        [LY + "test_af_reasoning_eval_in_the_model_card_layout"],
    ),
    (
        "distractors: release fidelity sends our prompt",
        "plugins/afcot_negatives/llm.py",
        """render_release_prompt(question, answer) if release""",
        """render_prompt(question, answer, k) if release""",
        [NL + "test_release_fidelity_sends_the_released_prompt_verbatim"],
    ),
    (
        "distractors: release fidelity re-asks",
        "plugins/afcot_negatives/llm.py",
        """        tries = 1 if release else 1 + self.config.retries""",
        """        tries = 1 + self.config.retries""",
        [NL + "test_release_fidelity_reads_one_strict_reply_and_never_re_asks"],
    ),
    (
        "distractors: release fidelity repairs the reply",
        "plugins/afcot_negatives/llm.py",
        """    json_parse: ClassVar[str] = "release"
    choices: list[str]""",
        """    json_parse: ClassVar[str] = "afcot"
    choices: list[str]""",
        [NL + "test_release_fidelity_reads_one_strict_reply_and_never_re_asks"],
    ),
    (
        "report escaping: a CoT part (SUMMARY, CAPTION, ...) shown unescaped",
        "plugins/afcot_report/page.py",
        """            f"<dt>{tag}</dt><dd>{escape(text)}</dd>" for tag, text in""",
        """            f"<dt>{tag}</dt><dd>{text}</dd>" for tag, text in""",
        [PE + "test_the_report_page_shows_every_payload_as_text"],
    ),
    (
        "report escaping: an item id unescaped in its data-id attribute",
        "plugins/afcot_report/page.py",
        """data-id="{escape(item.id)}">',""",
        """data-id="{item.id}">',""",
        [PE + "test_the_report_page_shows_every_payload_as_text"],
    ),
    (
        "report escaping: a benchmark table cell unescaped",
        "plugins/afcot_report/page.py",
        """f'<td{" class=n" if i in numeric else ""}>{escape(c)}</td>'""",
        """f'<td{" class=n" if i in numeric else ""}>{c}</td>'""",
        [PE + "test_the_report_page_shows_every_payload_as_text"],
    ),
    (
        "report escaping: a question shown unescaped on the audit page",
        "plugins/afcot_report/audit.py",
        """<dd class="{k.lower()}">{escape(v)}</dd>'""",
        """<dd class="{k.lower()}">{v}</dd>'""",
        [PE + "test_the_audit_page_shows_every_payload_as_text_and_keeps_its_ids_whole"],
    ),
    (
        "report escaping: the audit page's JSON can close its script element",
        "plugins/afcot_report/audit.py",
        """    return text.replace("<", "\\\\u003c").replace(">", "\\\\u003e").replace("&", "\\\\u0026")""",
        """    return text""",
        [PE + "test_the_audit_page_shows_every_payload_as_text_and_keeps_its_ids_whole"],
    ),
    (
        "audit: the Wilson interval with z = 1.0",
        "plugins/afcot_report/audit.py",
        """Z95 = 1.959963984540054""",
        """Z95 = 1.0""",
        [AU + "test_the_wilson_interval_matches_published_values"],
    ),
    (
        "audit: the sample not seeded",
        "plugins/afcot_report/audit.py",
        """random.Random(seed).sample(ids, min(count, len(ids)))""",
        """random.Random().sample(ids, min(count, len(ids)))""",
        [AU + "test_the_sample_is_a_seeded_random_draw_of_accepted_records"],
    ),
    (
        "audit: the sample is the first records, not a random draw",
        "plugins/afcot_report/audit.py",
        """    return random.Random(seed).sample(ids, min(count, len(ids)))""",
        """    return ids[:count]""",
        [AU + "test_the_sample_is_a_seeded_random_draw_of_accepted_records"],
    ),
    (
        "audit: the check's precision over the labelled positives",
        "plugins/afcot_report/audit.py",
        """result.tp / (result.tp + result.fp) if result.tp + result.fp else None""",
        """result.tp / (result.tp + result.fn) if result.tp + result.fn else None""",
        [AU + "test_score_gives_the_rate_its_interval_and_the_checks_agreement"],
    ),
    (
        "audit: the rate over the whole sample, unlabelled records included",
        "plugins/afcot_report/audit.py",
        """Score(n, max(0, sample_size - n), k, k / n if n else None, wilson(k, n))""",
        """Score(n, max(0, sample_size - n), k, k / sample_size if n else None, wilson(k, sample_size))""",
        [AU + "test_score_gives_the_rate_its_interval_and_the_checks_agreement"],
    ),
    (
        "audit: labels of ids outside the sample accepted",
        "plugins/afcot_report/audit.py",
        """        if sample_ids and item_id not in sample_ids:""",
        """        if False:""",
        [AU + "test_bad_labels_exit_2_naming_the_file_and_record"],
    ),
    (
        "audit: a saved labels file does not load back into the page (needs chromium)",
        "plugins/afcot_report/audit.py",
        """r.checked = r.value === value;""",
        """r.checked = false;""",
        [PE + "test_chromium_builds_no_injected_element_from_the_audit_page_and_round_trips_its_labels"],
    ),
    (
        "causality kept: the check rejects although causality_rejects = false",
        "plugins/afcot_paper/algorithms.py",
        """        if not self.config.causality_rejects:""",
        """        if False:""",
        [AU + "test_the_causality_check_is_measured_against_the_planted_truth"],
    ),
    (
        "causality kept: the check keeps what it flags by default",
        "plugins/afcot_paper/algorithms.py",
        """        if not self.config.causality_rejects:""",
        """        if True:""",
        [AU + "test_with_rejects_the_check_drops_what_it_flags"],
    ),
    (
        "embedded false reasoning: the draw not seeded",
        "plugins/afcot_embedded/llm.py",
        """rng = np.random.default_rng([seed, zlib.crc32(request.prompt.encode()), 0xFA15E])""",
        """rng = np.random.default_rng()""",
        [AU + "test_the_embedded_llm_plants_a_seeded_share_of_false_reasoning"],
    ),
    (
        "embedded false reasoning: the truth not recorded",
        "plugins/afcot_embedded/llm.py",
        """        return {"reasoning": text, "planted": kind}""",
        """        return {"reasoning": text}""",
        [AU + "test_the_embedded_llm_plants_a_seeded_share_of_false_reasoning"],
    ),
    # issue 21: what a new user meets in the first hour
    (
        "21.1: the scaffold's validator without its name",
        "plugins/afcot_devtools/plugin_template/roles/validator.py.tmpl",
        """    name = "{{name}}"\n""",
        "",
        ["tests/test_scaffold.py::test_every_role_installs_lists_and_passes_its_own_test"],
    ),
    (
        "21.2: a shard whose every item lacks its audio runs on",
        "afcot_core/stages/generator.py",
        """        self._refuse_missing_audio(index, records)""",
        """        pass""",
        ["tests/test_cli_contract.py::test_a_shard_whose_every_item_lacks_its_audio_exits_2_naming_audio_root"],
    ),
    (
        "21.3: the README's bigger run into the quickstart's folder",
        "README.md",
        """--stages generate --out runs/quickstart-5000""",
        """--stages generate""",
        [FH + "test_the_readme_commands_run_in_order_never_share_a_run_folder_between_different_recipes"],
    ),
    (
        "21.4: the train stage silent until torch is imported",
        "plugins/afcot_flamingo/stage.py",
        """        ctx.log.info("building the model", trainer=self.trainer.registration.name)""",
        """        pass""",
        [FH + "test_a_run_shows_no_output_of_other_libraries_and_train_speaks_from_its_first_second[True]"],
    ),
    (
        "21.5: other libraries' bars and warnings left as they are",
        "afcot_core/log.py",
        """    close()\n    quiet_libraries()\n""",
        """    close()\n""",
        [FH + "test_warnings_of_other_libraries_go_into_the_run_log"],
    ),
    (
        "21.6: --set typos suggest no sub-table",
        "afcot_core/recipe.py",
        """listed = [*known, *tables]""",
        """listed = known""",
        [FH + "test_a_typo_in_set_gets_a_suggestion_and_the_sub_tables_are_listed"],
    ),
    (
        "21.7: recipe plan exits 0 with inputs missing",
        "afcot_core/cli.py",
        """    return 2 if doc["missing"] else 0""",
        """    return 0""",
        ["tests/test_cli_contract.py::test_plan_reports_the_checkpoint_an_evaluate_only_run_lacks"],
    ),
    (
        "21.7: a malformed manifest reported as a missing input",
        "plugins/afcot_io/manifest.py",
        """    read_manifest(Path(config.path))\n    try:\n        _audio_root(config)""",
        """    try:\n        read_manifest(Path(config.path))\n        _audio_root(config)""",
        [FH + "test_a_malformed_manifest_line_is_bad_input_and_not_a_missing_input"],
    ),
    (
        "21.7: export --out FILE says Not a directory",
        "plugins/afcot_io/export.py",
        """    out = out_folder(args.out)""",
        """    out = Path(args.out)""",
        [FH + "test_export_into_a_file_says_it_is_a_file_not_a_folder"],
    ),
    (
        "21.7: recipe list cuts a description at its first line",
        "plugins/afcot_devtools/commands.py",
        """    text = " ".join(words)""",
        """    text = " ".join(words[:1])""",
        ["tests/test_recipes_catalog.py::test_recipe_list_gives_each_description_whole"],
    ),
    (
        "21.7: a live bar cut to width in a file",
        "afcot_core/progress.py",
        """self._plain = enabled and not log.console().is_terminal""",
        """self._plain = False""",
        [FH + "test_the_progress_line_in_a_file_is_one_whole_line"],
    ),
    (
        "21.9: the README silent on the install's CUDA wheels",
        "README.md",
        """pip install torch --index-url https://download.pytorch.org/whl/cpu""",
        """pip install torch""",
        [FH + "test_the_readme_says_what_the_install_costs_and_how_to_keep_cuda_out"],
    ),
    (
        "17.4: a variant generates again the items an earlier one made",
        "afcot_core/runner.py",
        """            if shared and isinstance(data.get("train"), dict):""",
        """            if False:""",
        [VA + "test_learn_trains_cot_and_plain_on_the_same_items_and_compares_them",
         VA + "test_plan_and_validate_show_the_variants"],
    ),
    (
        "17.4: a variant's error does not name the variant",
        "afcot_core/runner.py",
        """            raise BadInput(f"[variants.{name}] {exc}") from None""",
        """            raise""",
        [VA + "test_a_typo_in_a_variant_names_the_variant_and_suggests_the_key"],
    ),
    (
        "17.4: a table value replaces the table instead of merging into it",
        "afcot_core/runner.py",
        """    if isinstance(value, dict) and isinstance(node.get(last), dict):""",
        """    if False:""",
        [VA + "test_the_experiment_recipes_run_end_to_end"],
    ),
    (
        "17.4: every variant into the same folder",
        "afcot_core/runner.py",
        """        found[name] = (variant, out_dir_of(recipe, out) / name, shared, chosen)""",
        """        found[name] = (variant, out_dir_of(recipe, out), shared, chosen)""",
        [VA + "test_compare_bfs_dfs_runs_both_algorithms_in_one_command"],
    ),
    (
        "17.4: afcot inspect blind to a variants folder",
        "plugins/afcot_devtools/inspect.py",
        """    if (path / "compare.json").is_file() and not (path / "recipe.lock.toml").is_file():""",
        """    if False:""",
        [VA + "test_inspect_and_report_show_the_comparison"],
    ),
    (
        "17.2: the plain target letter-first again",
        "afcot_core/template.py",
        """ if lettered else key""",
        """ if True else key""",
        ["tests/test_template.py::test_the_plain_target_is_the_answer_text_the_judge_reads_and_lettered_on_request",
         "tests/test_training_data.py::test_plain_targets_are_the_answer_text_and_a_source_can_blend_cot_with_plain",
         "tests/test_export.py::test_af2_manifest_and_plain_answers"],
    ),
    (
        "17.4: a shard source's own cot ignored (no CoT/plain blend)",
        "plugins/afcot_flamingo/training/data.py",
        """        own = cot if spec.cot is None else spec.cot""",
        """        own = cot""",
        ["tests/test_training_data.py::test_plain_targets_are_the_answer_text_and_a_source_can_blend_cot_with_plain"],
    ),
    (
        "17.1: the task after the perception stage starts from the random student again",
        "plugins/afcot_flamingo/training/loop.py",
        """        return _train(student, c, data_dir, out_dir, log, progress, group, init)""",
        """        return _train(student, c, data_dir, out_dir, log, progress, group)""",
        ["tests/test_af3_trainer.py::test_a_perception_stage_trains_captions_first_then_the_task_from_its_weights"],
    ),
    (
        "17.1: the perception stage trains on the plain answers",
        "plugins/afcot_flamingo/training/loop.py",
        """cot=False, plain_target="caption", max_steps""",
        """cot=False, max_steps""",
        ["tests/test_af3_trainer.py::test_a_perception_stage_trains_captions_first_then_the_task_from_its_weights"],
    ),
    (
        "17.1: a caption target keeps the question's prompt",
        "plugins/afcot_flamingo/training/data.py",
        """            return Example(read(audio, where), ((CAPTION_PROMPT, target),), self.name, key)""",
        """            pass""",
        ["tests/test_training_data.py::test_a_caption_target_is_the_records_caption_for_describe_the_sound"],
    ),
    (
        "18.3: the engine called with an empty batch after it died",
        "afcot_core/batcher.py",
        """                if not batch:  # a dead engine failed the requests that were waiting for this slot""",
        """                if False:  # a dead engine failed the requests that were waiting for this slot""",
        ["tests/test_teacher.py::test_requests_queued_behind_a_dying_engine_call_fail_without_another_engine_call"],
    ),
    (
        "18.3: a config refusing gpu_memory_utilization = 1",
        "plugins/afcot_qwen/config.py",
        """not 0 < self.gpu_memory_utilization <= 1""",
        """not 0 < self.gpu_memory_utilization < 1""",
        ["tests/test_qwen_config.py::test_the_limits_take_their_boundary_values"],
    ),
    (
        "18.3: base_urls_env's URLs keep their trailing slash",
        "plugins/afcot_qwen/config.py",
        """u.strip().rstrip("/")""",
        """u.strip()""",
        ["tests/test_qwen_config.py::test_server_urls_come_from_the_variable_when_it_is_set"],
    ),
    (
        "18.6: the Omni teacher's clips asked without their request's text",
        "plugins/afcot_qwen/hf.py",
        """            prompts = [self._prompt(requests[i].prompt, n, requests[i].prefix)""",
        """            prompts = [self._prompt(requests[0].prompt, n, requests[i].prefix)""",
        ["tests/test_qwen.py::test_omni_audio_requests_carry_their_own_prompt_prefix_and_placeholder_count"],
    ),
    (
        "18.6: the Omni teacher's clips asked without their answer prefix",
        "plugins/afcot_qwen/hf.py",
        """            prompts = [self._prompt(requests[i].prompt, n, requests[i].prefix)""",
        """            prompts = [self._prompt(requests[i].prompt, n)""",
        ["tests/test_qwen.py::test_omni_audio_requests_carry_their_own_prompt_prefix_and_placeholder_count"],
    ),
    (
        "18.6: the Omni teacher's features left in float32 under a bfloat16 model",
        "plugins/afcot_qwen/hf.py",
        """            enc["input_features"] = feats["input_features"].to(self.lm.dtype)""",
        """            enc["input_features"] = feats["input_features"]""",
        ["tests/test_qwen.py::test_omni_audio_requests_carry_their_own_prompt_prefix_and_placeholder_count"],
    ),
    (
        "18.6: a sampled Omni teacher ignoring the requests' seeds",
        "plugins/afcot_qwen/hf.py",
        """        for i, ids in zip(indices, _generate(self.lm, self.tok, enc, self.config, seeds), strict=True):""",
        """        for i, ids in zip(indices, _generate(self.lm, self.tok, enc, self.config, [0] * len(indices)),
                          strict=True):""",
        ["tests/test_qwen.py::test_a_sampled_omni_teacher_follows_each_request_s_seed_and_keeps_its_reply_whole"],
    ),
    (
        "18.6: the Omni teacher's replies cut after a </think>",
        "plugins/afcot_qwen/hf.py",
        """skip_special_tokens=False), thinking=False)""",
        """skip_special_tokens=False), thinking=True)""",
        ["tests/test_qwen.py::test_a_sampled_omni_teacher_follows_each_request_s_seed_and_keeps_its_reply_whole"],
    ),
    (
        "18.6: seeded sampling with top_k = 1 drawing from every token",
        "plugins/afcot_qwen/sampling.py",
        """        if self.top_k > 0:""",
        """        if self.top_k > 1:""",
        ["tests/test_qwen.py::test_seeded_sampling_draws_from_transformers_own_temperature_top_k_top_p_distribution"],
    ),
    (
        "18.6: the nucleus keeps a token past the one that reaches top_p",
        "plugins/afcot_qwen/sampling.py",
        """        drop = probs.cumsum(-1) - probs >= self.top_p""",
        """        drop = probs.cumsum(-1) - probs > self.top_p""",
        ["tests/test_qwen.py::test_the_nucleus_is_the_smallest_set_whose_probability_reaches_top_p"],
    ),
    (
        "18.6: the Omni teacher's text-only requests asked without their answer prefix",
        "plugins/afcot_qwen/hf.py",
        """            prompts = [self._prompt(requests[i].prompt, 0, requests[i].prefix) for i in text_only]""",
        """            prompts = [self._prompt(requests[i].prompt, 0, "") for i in text_only]""",
        ["tests/test_qwen.py::test_omni_audio_requests_carry_their_own_prompt_prefix_and_placeholder_count"],
    ),
    (
        "18.6: the transformers backend ignoring max_new_tokens",
        "plugins/afcot_qwen/hf.py",
        """max_new_tokens=config.max_new_tokens, pad_token_id""",
        """pad_token_id""",
        ["tests/test_qwen.py::test_qwen3_reply_is_the_text_after_think"],
    ),
    (
        "18.7: a call abandoned by a loop that has ended raises in its thread",
        "afcot_core/batcher.py",
        """        with contextlib.suppress(RuntimeError):  # the loop is gone""",
        """        with contextlib.suppress(KeyError):  # the loop is gone""",
        [TE + "test_a_call_abandoned_by_a_loop_that_has_ended_finishes_quietly_in_its_thread"],
    ),
    (
        "18.7: the engine asked without the request's audio",
        "afcot_core/teacher.py",
        """Request(prompt, audio, prefix, seed if self.sampled else None)""",
        """Request(prompt, None, prefix, seed if self.sampled else None)""",
        [TE + "test_the_engine_is_given_each_request_s_audio_and_prefix"],
    ),
    (
        "18.7: an outage budget of 0 s refused",
        "afcot_core/teacher.py",
        """        if self.outage_s < 0:""",
        """        if self.outage_s <= 0:""",
        [TE + "test_an_outage_budget_may_be_zero_or_fractional_never_negative"],
    ),
    (
        "18.7: the final validators never shown the composed CoT",
        "afcot_core/stages/generator.py",
        """            self._check(self.final_checks, item, evidence, cot)""",
        """            self._check(self.final_checks, item, evidence, None)""",
        ["tests/test_generate.py::test_the_final_validators_judge_the_composed_cot_a_wrong_conclusion_is_rejected"],
    ),
    (
        "18.7: a shard refused for its audio names another item than its reason",
        "afcot_core/stages/generator.py",
        """e.g. {records[0].item.id}: {records[0].reason}""",
        """e.g. {records[-1].item.id}: {records[0].reason}""",
        ["tests/test_cli_contract.py::test_a_shard_whose_every_item_lacks_its_audio_exits_2_naming_audio_root"],
    ),
    (
        "18.7: a shard that fails waits for every other shard before it stops the stage",
        "afcot_core/stages/generator.py",
        """            while running:  # one at a time: a failed shard stops the stage without waiting for the rest
                await settle()""",
        """            if running:
                await asyncio.wait(running)
                await settle()""",
        ["tests/test_generate.py::test_a_bug_in_one_shard_stops_the_stage_with_that_error_and_cancels_the_shard_still_running"],
    ),
    (
        "18.7: the cancelled shards' CancelledError raised instead of the failed shard's error",
        "afcot_core/stages/generator.py",
        """                await asyncio.gather(*running, return_exceptions=True)""",
        """                await asyncio.gather(*running)""",
        ["tests/test_generate.py::test_a_bug_in_one_shard_stops_the_stage_with_that_error_and_cancels_the_shard_still_running"],
    ),
    (
        "18.7: stats.json without the run's calls",
        "afcot_core/stages/generator.py",
        """        stats.write(self.store.root, run={"calls": self.calls, "cache_hits": self.cache_hits})""",
        """        stats.write(self.store.root, run={"cache_hits": self.cache_hits})""",
        ["tests/test_generate.py::test_the_run_log_has_each_shard_and_the_stage_s_end_and_stats_json_its_calls"],
    ),
    (
        "18.7: a dead engine forgotten: later requests call it again",
        "afcot_core/batcher.py",
        """                self._dead = exc
""",
        """                pass
""",
        [TE + "test_after_the_engine_died_a_new_request_fails_at_once_without_an_engine_call"],
    ),
    (
        "18.7: accepted records written to the rejects file too",
        "afcot_core/shards.py",
        """        others = [r for r in records if r.verdict != "accepted"]""",
        """        others = list(records)""",
        ["tests/test_store.py::test_the_rejects_file_holds_every_record_but_the_accepted_ones"],
    ),
    (
        "18.7: a failed commit of the replay cache leaves it on",
        "afcot_core/cache.py",
        """            self._db.commit()
        except sqlite3.DatabaseError as exc:
            self._warn(f"{self.path}: commit failed ({exc}); the replay cache is off for the rest of this run")
            self._db = None""",
        """            self._db.commit()
        except sqlite3.DatabaseError as exc:
            self._warn(f"{self.path}: commit failed ({exc}); the replay cache is off for the rest of this run")""",
        ["tests/test_store.py::test_a_cache_whose_commit_fails_says_so_once_and_turns_itself_off"],
    ),
    (
        "18.7: the plan of a variant without the items it trains on",
        "afcot_core/runner.py",
        """        shared = f"; trains on the items of '{v['items_of']}'" if v["items_of"] else """"",
        """        shared = """"",
        ["tests/test_runner.py::test_plan_shows_each_variant_its_folder_stages_overrides_shared_items_and_what_it_lacks"],
    ),
    (
        "18.1: a timeout read as the request's fault, never as a server that may be down",
        "plugins/afcot_qwen/openai_backend.py",
        """problem, unreachable = f"no reply within {policy.timeout_s} s", True""",
        """problem, unreachable = f"no reply within {policy.timeout_s} s", False""",
        [OA + "test_a_server_that_no_longer_answers_even_its_probe_leaves_the_rotation_on_a_timeout"],
    ),
    (
        "18.1: a server's call without its timeout",
        "plugins/afcot_qwen/openai_backend.py",
        """functools.partial(self._post, server, body, policy.timeout_s)""",
        """functools.partial(self._post, server, body, None)""",
        ["tests/test_openai_backend.py::test_a_reply_later_than_timeout_s_is_abandoned_and_tried_again_as_a_timeout"],
    ),
    (
        "18.1: a timeout counted as another fault",
        "plugins/afcot_qwen/openai_backend.py",
        """                self._count("timeout")""",
        """                self._count("connection")""",
        ["tests/test_openai_backend.py::test_a_reply_later_than_timeout_s_is_abandoned_and_tried_again_as_a_timeout"],
    ),
    (
        "18.1: a retry waiting the delay of a later retry",
        "plugins/afcot_qwen/openai_backend.py",
        """policy.delay(tries - 1))""",
        """policy.delay(tries))""",
        ["tests/test_openai_backend.py::test_retried_replies_wait_as_the_server_asks_or_back_off_and_are_counted_by_kind"],
    ),
    (
        "18.1: HTTP errors not counted by their status",
        "plugins/afcot_qwen/openai_backend.py",
        """                self._count(str(response.status_code))""",
        """                self._count("http")""",
        ["tests/test_openai_backend.py::test_retried_replies_wait_as_the_server_asks_or_back_off_and_are_counted_by_kind"],
    ),
    (
        "18.1: a reply that is not JSON not named",
        "plugins/afcot_qwen/openai_backend.py",
        '                        problem = "the reply is not JSON"',
        '                        problem = "bad reply"',
        ["tests/test_openai_backend.py::test_a_reply_that_is_not_json_is_retried_then_named"],
    ),
    (
        "18.4: a server's null content read as text",
        "plugins/afcot_qwen/openai_backend.py",
        '            content = reply["choices"][0]["message"]["content"] or ""',
        '            content = str(reply["choices"][0]["message"]["content"])',
        ["tests/test_openai_backend.py::test_a_reply_with_null_content_is_empty_and_one_without_choices_is_refused"],
    ),
    (
        "18.1: a 503 counted as the request's failure instead of an outage",
        "plugins/afcot_qwen/openai_backend.py",
        "                unreachable = response.status_code in UNREACHABLE_STATUS",
        "                unreachable = False",
        ["tests/test_openai_backend.py::test_a_server_answering_503_is_an_outage_waited_out_not_a_failed_request"],
    ),
    # issue 20: the paper plugin's algorithms, validators and prompts
    (
        "20.p1: a caption of 'None' in another case taken for a caption",
        'plugins/afcot_paper/validators.py',
        'caption.lower() == "none"',
        'caption == "none"',
        [FR + "test_a_caption_needs_its_minimum_of_words_and_none_is_no_caption"],
    ),
    (
        '20.p2: the caption counted as a sub-question answer',
        'plugins/afcot_paper/validators.py',
        """if len(evidence.chain) - 1 < self.config.min_sub_qas:""",
        """if len(evidence.chain) < self.config.min_sub_qas:""",
        [FR + "test_the_chain_needs_its_minimum_of_sub_question_answers"],
    ),
    (
        '20.p3: only the caption checked for prose',
        'plugins/afcot_paper/validators.py',
        """            for _, answer in evidence.chain:""",
        """            for _, answer in evidence.chain[:1]:""",
        [FR + "test_a_teacher_reply_that_is_not_prose_rejects_naming_its_first_40_characters"],
    ),
    (
        '20.p4: the conclusion not compared with the answer',
        'plugins/afcot_paper/validators.py',
        """        if parsed.conclusion != item.answer.strip():""",
        """        if False:""",
        [FR + "test_a_composed_cot_passes_when_its_conclusion_is_the_answer_and_its_parts_are_prose"],
    ),
    (
        '20.p5: the composed REASONING not checked for prose',
        'plugins/afcot_paper/validators.py',
        """for part in (parsed.summary, parsed.reasoning) if""",
        """for part in (parsed.summary,) if""",
        [FR + "test_a_composed_cot_whose_summary_or_reasoning_is_not_prose_rejects_unless_prose_is_off"],
    ),
    (
        '20.p6: markup taken for prose',
        'plugins/afcot_paper/validators.py',
        """if text[0] in "{[<" or""",
        """if text[0] in "{[" or""",
        [FR + "test_prose_is_a_sentence_not_json_markup_control_bytes_or_symbols"],
    ),
    (
        "20.p7: release remove_option misses the 'x:' tag",
        'plugins/afcot_paper/release.py',
        """("({})", "{}.", "{})", "{}:")""",
        """("({})", "{}.", "{})")""",
        [RF + "test_the_released_remove_option_drops_only_a_tagged_first_word"],
    ),
    (
        '20.p8: release validation skipped for a chain of one question',
        'plugins/afcot_paper/algorithms.py',
        """            _nothing() if len(chain) < 2 else ctx.llm_json(
                self.prompts.fill("validate", answer=item.answer, **context), release.Validation""",
        """            _nothing() if len(chain) < 3 else ctx.llm_json(
                self.prompts.fill("validate", answer=item.answer, **context), release.Validation""",
        [RF + "test_release_validation_is_asked_only_of_a_chain_with_a_question"],
    ),
    (
        '20.p9: a release validation that will not parse counts as yes',
        'plugins/afcot_paper/algorithms.py',
        """fallback=release.Validation(validation=0)""",
        """fallback=release.Validation(validation=1)""",
        [RF + "test_release_validation_that_will_not_parse_counts_as_no_and_notes_its_fallback"],
    ),
    (
        '20.p10: a release follow-up that is not text sent to the ALM',
        'plugins/afcot_paper/algorithms.py',
        """if reply.followup is msgspec.UNSET or not isinstance(reply.followup, str):""",
        """if reply.followup is msgspec.UNSET:""",
        [RF + "test_release_rejections_name_what_the_released_script_stops_on"],
    ),
    (
        '20.p11: a release round that will not parse rejects the item',
        'plugins/afcot_paper/algorithms.py',
        """                                   fallback=release.Followup(answer="unsure"))""",
        """                                   )""",
        [RF + "test_release_round_that_will_not_parse_is_unsure_without_a_followup"],
    ),
    (
        '20.p12: release rounds share one seed',
        'plugins/afcot_paper/algorithms.py',
        """reply = await ctx.llm_json(prompt, release.Followup, f"followup:{round_}",""",
        """reply = await ctx.llm_json(prompt, release.Followup, "followup",""",
        [RF + "test_release_rounds_each_sample_with_a_seed_of_their_own"],
    ),
    (
        '20.p13: a release summary that is not text kept as it is',
        'plugins/afcot_paper/algorithms.py',
        """        return value if isinstance(value, str) else str(value)""",
        """        return value""",
        [RF + "test_release_summary_and_reasoning_are_read_as_released"],
    ),
    (
        "20.p14: the verdict 'true' as text not a yes",
        'plugins/afcot_paper/algorithms.py',
        """in ("1", "true", "yes")""",
        """in ("1", "yes")""",
        [AL + "test_verdict_helpers_read_replies_as_documented"],
    ),
    (
        '20.p15: Algorithm 9 refuses a single round',
        'plugins/afcot_paper/algorithms.py',
        """        if self.max_rounds < 1:
            raise ValueError("max_rounds must be >= 1")
        if self.fidelity""",
        """        if self.max_rounds <= 1:
            raise ValueError("max_rounds must be >= 1")
        if self.fidelity""",
        [AL + "test_rounds_must_be_at_least_one"],
    ),
    (
        '20.p16: blank sub-questions sent to the ALM',
        'plugins/afcot_paper/algorithms.py',
        """(lambda s: isinstance(s, str) and s.strip())""",
        """(lambda s: isinstance(s, str))""",
        [AL + "test_alg6_sub_questions_must_be_text_and_afcot_drops_blank_ones_the_release_keeps"],
    ),
    (
        "20.p17: the record's formatted_question without its options",
        'plugins/afcot_paper/algorithms.py',
        """evidence.notes["formatted_question"] = self.question(item)""",
        """evidence.notes["formatted_question"] = item.question""",
        [AL + "test_alg6_records_its_sub_questions_and_the_formatted_question"],
    ),
    (
        '20.p18: a repeated sub-question gets the seed of the first',
        'plugins/afcot_paper/algorithms.py',
        'step=f"sub:{i}"',
        'step="sub"',
        [AL + "test_the_same_question_asked_twice_is_sampled_twice"],
    ),
    (
        '20.p19: an empty Algorithm 9 answer taken for a final one',
        'plugins/afcot_paper/algorithms.py',
        """        answer = as_text(reply.answer) or "unsure"
            if not unsure(answer):""",
        """        answer = as_text(reply.answer) or "?"
            if not unsure(answer):""",
        [AL + "test_an_empty_answer_is_unsure_and_out_of_rounds_the_prediction_stays_unsure"],
    ),
    (
        "20.p20: Algorithm 9 goes on past the LLM's answer",
        'plugins/afcot_paper/algorithms.py',
        """            if not unsure(answer):
                break
            if len(remaining) == 1:""",
        """            if len(remaining) == 1:""",
        [AL + "test_alg9_stops_at_the_llms_answer_and_shows_it_the_caption"],
    ),
    (
        "20.p21: Algorithm 8's fit before its description",
        'plugins/afcot_paper/algorithms.py',
        'f"{pairs[i][1]} {pairs[i + 1][1]}"',
        'f"{pairs[i + 1][1]} {pairs[i][1]}"',
        [AL + "test_alg8_reasoning_is_each_choices_description_then_its_fit_in_order"],
    ),
    (
        '20.p22: a causality reply that will not parse rejects as malformed',
        'plugins/afcot_paper/algorithms.py',
        """reply = await ctx.llm_json(prompt, AnswerReply, "causality", fallback=AnswerReply(answer="unsure"))""",
        """reply = await ctx.llm_json(prompt, AnswerReply, "causality")""",
        [AL + "test_a_causality_reply_that_will_not_parse_or_is_empty_counts_as_unsure"],
    ),
    (
        '20.p23: a kept record that fails the causality check not marked',
        'plugins/afcot_paper/algorithms.py',
        """            ctx.codes.append("causality/does-not-follow")
""",
        """""",
        [AL + "test_a_kept_record_that_fails_the_causality_check_says_so_in_its_codes"],
    ),
    (
        '20.p24: a prompt step missing from a set not read from paper',
        'plugins/afcot_paper/prompts.py',
        """        path = _file(DEFAULT_SET, name)""",
        """        path = _file(prompt_set, name)""",
        [PR + "test_prompt_files_are_read_from_the_installed_package_and_a_missing_step_falls_back_to_paper"],
    ),
    (
        '20.p25: a header running past its first line',
        'plugins/afcot_paper/prompts.py',
        """return source(name, prompt_set).split("\\n", 1)[0]""",
        """return source(name, prompt_set).rsplit("\\n", 1)[0]""",
        [PR + "test_a_header_is_the_first_line_without_its_hash_and_each_set_has_its_own"],
    ),
    (
        '20.p26: an empty release listing opens a new line',
        'plugins/afcot_paper/prompts.py',
        """return "\\n" + text if self.set == "release" and chain else text""",
        """return "\\n" + text if self.set == "release" else text""",
        [PR + "test_listings_open_on_a_new_line_only_in_the_release_set_and_only_when_there_is_one"],
    ),
    (
        "20.d1: the dataset card's size category off at a power of ten",
        "plugins/afcot_devtools/datacard.py",
        "        if n < bound:",
        "        if n <= bound:",
        [DC + "test_the_size_category_changes_at_each_power_of_ten"],
    ),
    (
        "20.d2: the dataset card escapes text beyond ASCII",
        "plugins/afcot_devtools/datacard.py",
        """            lines.append(f"{pad}{key}: {json.dumps(item, ensure_ascii=False)}")""",
        """            lines.append(f"{pad}{key}: {json.dumps(item)}")""",
        [DC + "test_text_beyond_ascii_is_written_as_it_is_and_a_teacher_without_use_is_a_question_mark"],
    ),
    (
        "20.d3: the dataset card's nested lists lose their indent",
        "plugins/afcot_devtools/datacard.py",
        """                    lines += [f"{pad}  - {first.lstrip()}", *rest]""",
        """                    lines += [f"{pad}- {first.lstrip()}", *rest]""",
        [DC + "test_the_card_metadata_is_yaml_a_hub_reads"],
    ),
    (
        "20.d4: stats.md shows the ALM calls where the LLM calls belong",
        "plugins/afcot_devtools/stats_table.py",
        """{_num(calls['alm'])} + {_num(calls['llm'])}""",
        """{_num(calls['alm'])} + {_num(calls['alm'])}""",
        [ST + "test_one_row_per_strategy_and_source_then_the_total_and_the_token_estimate"],
    ),
    (
        "20.d5: stats.md forgets the replay cache's answers",
        "plugins/afcot_devtools/stats_table.py",
        """{stats['run'].get('cache_hits', 0)} answered""",
        """{stats['run'].get('calls', 0)} answered""",
        [ST + "test_a_run_adds_its_calls_and_replay_cache_answers"],
    ),
    (
        "20.d6: inspect refuses a run killed before it marked a shard",
        "plugins/afcot_devtools/inspect.py",
        """    if not markers and not list(gen.glob("*.tar")):""",
        """    if not markers:""",
        [IN + "test_a_run_killed_before_it_marked_a_shard_and_one_whose_shards_are_gone"],
    ),
    (
        "20.d7: inspect takes a run folder with a comparison for a variants folder",
        "plugins/afcot_devtools/inspect.py",
        """    if (path / "compare.json").is_file() and not (path / "recipe.lock.toml").is_file():""",
        """    if (path / "compare.json").is_file():""",
        [IN + "test_a_run_folder_with_a_comparison_beside_its_lock_is_described_as_a_run"],
    ),
    (
        "20.d8: inspect's error for a broken record does not name the shard",
        "plugins/afcot_devtools/inspect.py",
        'f"{shard}: {key}.json"',
        'f"{key}.json"',
        [IN + "test_a_shard_whose_first_record_is_not_json_is_named_with_its_key"],
    ),
    (
        "20.d9: a recipe's summary runs to its last sentence",
        "plugins/afcot_devtools/commands.py",
        """    end = text.find(". ")""",
        """    end = text.rfind(". ")""",
        [DV + "test_a_summary_is_the_whole_first_sentence_of_the_opening_comment"],
    ),
    (
        "20.d10: docs recipes writes into a missing folder's parent",
        "plugins/afcot_devtools/commands.py",
        """    if not out.parent.is_dir():""",
        """    if False:""",
        [DV + "test_docs_recipes_refuses_a_folder_or_a_missing_folder"],
    ),
    (
        "20.n1: the analysis draws each item's options with the answer's seed, not the item's",
        "plugins/afcot_negatives/analysis.py",
        """rng=make_rng(seed, e.key)""",
        """rng=make_rng(seed, akey)""",
        [NA + "test_each_item_draw_is_seeded_by_the_seed_and_the_item_key"],
    ),
    (
        "20.n2: an eval file's entries in string order (10 before 2)",
        "plugins/afcot_negatives/evalfile.py",
        """keys = sorted(doc["data"], key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))""",
        """keys = sorted(doc["data"])""",
        [NE + "test_entries_come_in_numeric_key_order_then_the_other_keys_by_name"],
    ),
    (
        "20.n3: an edited ontology file is never read again",
        "plugins/afcot_negatives/vocabulary.py",
        """return _load(str(p.resolve()), mtime)""",
        """return _load(str(p.resolve()), 0)""",
        [NV + "test_an_ontology_file_is_read_again_once_it_changes"],
    ),
    (
        "20.n4: an ambiguous clip's answer drawn the same for every clip",
        "plugins/afcot_negatives/builder.py",
        """make_rng(seed, "answer", clip.clip)""",
        """make_rng(seed, "answer")""",
        [NB + "test_an_ambiguous_clip_answers_with_a_leaf_drawn_from_the_seed_and_the_clip"],
    ),
    (
        "20.n5: a distractor repeated within one teacher reply counted twice",
        "plugins/afcot_negatives/llm.py",
        """seen.add(key)""",
        """pass""",
        [NL + "test_repeats_within_one_reply_count_once"],
    ),
    (
        "20.n6: the cycle check stops at the first class already visited",
        "plugins/afcot_negatives/ontology.py",
        """                continue
""",
        """                break
""",
        [ON + "test_a_cycle_is_named_by_the_first_class_met_twice_on_the_path"],
    ),
    (
        "20.n7: the sampler seeded by the answer as spelled, not by its key",
        "plugins/afcot_negatives/samplers.py",
        """seed, label_key(answer))""",
        """seed, answer)""",
        [NS + "test_a_draw_is_seeded_by_the_seed_and_the_answers_key"],
    ),
    (
        "20.i1: afcot export's default format the AF2 manifest",
        "plugins/afcot_io/export.py",
        """choices=["afthink", "af2"], default="afthink",""",
        """choices=["afthink", "af2"], default="af2",""",
        ["tests/test_export.py::test_export_s_defaults_are_the_afthink_file_with_cot_targets"],
    ),
    (
        "20.i2: afcot export's --layout accepting any text",
        "plugins/afcot_io/export.py",
        """parser.add_argument("--layout", choices=LAYOUTS, default="inline",""",
        """parser.add_argument("--layout", default="inline",""",
        ["tests/test_export.py::test_export_takes_each_of_its_choices_and_refuses_anything_else"],
    ),
    (
        "20.c1: an option's help text changed without the command reference",
        "plugins/afcot_io/export.py",
        """help="the folder to write into")""",
        """help="the folder to write to")""",
        [CR + "test_the_committed_page_is_current"],
    ),
    (
        "20.c2: the command reference not saying which arguments are required",
        "plugins/afcot_devtools/command_reference.py",
        """    if action.required:
        return "required"
""",
        "",
        [CR + "test_the_committed_page_is_current", CR + "test_a_table_shows_values_defaults_requirements_and_repeats"],
    ),
    (
        "20.c3: the command reference listing the commands of plugins from outside afcot",
        "plugins/afcot_devtools/command_reference.py",
        """                                                  if c.plugin in mine})""",
        """                                                  })""",
        [CR + "test_only_the_built_in_commands_unless_every_one_is_asked_for"],
    ),
    (
        "20.b1: an embedded-eval prediction file read back without its answers' option index",
        "plugins/afcot_benchmarks/embedded_eval.py",
        """answer=answer, answer_index=answer_index(answer, choices),""",
        """answer=answer, answer_index=None,""",
        [BF + "test_an_embedded_eval_prediction_file_reads_back_every_field_and_scores"],
    ),
    (
        "20.b2: MMAR's prediction file written under the wrong key",
        "plugins/afcot_benchmarks/mmar.py",
        """"answer_prediction": answer or \"\"}""",
        """"prediction": answer or \"\"}""",
        [BF + "test_an_mmar_prediction_file_round_trips_and_scores_the_same"],
    ),
    (
        "20.b3: MMAR's preflight silent about a missing audio folder",
        "plugins/afcot_benchmarks/mmar.py",
        """    if not config.audio_dir().is_dir():""",
        """    if False:""",
        [BF + "test_mmar_preflight_names_the_missing_file_and_audio_folder"],
    ),
    (
        "20.i3: an AF2 manifest without 'split_path' not falling back to the 'dataset_path' of AF-Reasoning-Eval files",
        "plugins/afcot_io/formats.py",
        """folder = doc.get("split_path", doc.get("dataset_path"))""",
        """folder = doc.get("split_path")""",
        [IF_ + "test_an_af2_manifest_names_its_folder_split_path_first_then_dataset_path"],
    ),
    (
        "20.i4: a broken JSON-lines file naming the line before the broken one (lines counted from 0)",
        "plugins/afcot_io/formats.py",
        """for n, line in enumerate(lines, 1):""",
        """for n, line in enumerate(lines):""",
        [IF_ + "test_a_json_lines_file_with_a_broken_line_is_refused_naming_the_line"],
    ),
    (
        "20.i5: a multi-audio record written with a path that no <sound-k> tag names",
        "plugins/afcot_io/formats.py",
        """ or max(named) > len(sounds) or len(named) != len(sounds):""",
        """ or max(named) > len(sounds):""",
        [IF_ + "test_a_multi_audio_record_is_refused_unless_its_tags_name_each_path"],
    ),
    (
        "20.i6: afcot export's --relative-to not following a link to the training folder",
        "plugins/afcot_io/export.py",
        """base = Path(args.relative_to).resolve() if args.relative_to else None""",
        """base = Path(args.relative_to) if args.relative_to else None""",
        [ER + "test_relative_to_a_folder_reached_through_a_link_names_sound_from_where_the_link_leads"],
    ),
    (
        "20.i7: a WebDataset shard keeps the teacher trace with trace off",
        "plugins/afcot_io/webdataset_sink.py",
        """trace=record.trace if self.config.trace else [])""",
        """trace=record.trace)""",
        [ER + "test_a_shard_without_audio_or_trace_keeps_only_the_record_and_its_target"],
    ),
    (
        "20.i8: the afthink preflight ignoring the limit (reporting audio of records the run never reads)",
        "plugins/afcot_io/afthink.py",
        """for c in records[: config.limit] if not""",
        """for c in records if not""",
        [IS + "test_afthink_preflight_lists_the_audio_files_not_found"],
    ),
    (
        "20.i9: a manifest line with an empty choices list skipping the answer check",
        "plugins/afcot_io/manifest.py",
        """if line.choices is not None and""",
        """if line.choices and""",
        [IS + "test_an_answer_outside_its_choices_is_refused_showing_the_tagged_form"],
    ),
    (
        "20.i10: an AF2 manifest entry's duration read without a check (a word, a negative number, true)",
        "plugins/afcot_io/formats.py",
        """duration=0.0 if entry.get("duration") is None else _duration(entry, where)))""",
        """duration=float(entry.get("duration") or 0.0)))""",
        [IF_ + "test_an_af2_manifest_that_breaks_the_format_is_refused_naming_the_entry_and_key"],
    ),
    (
        "20.b4: AF-Reasoning-Eval's export keying entries by the id after its first '/' (Yes/No keys become 'No/0')",
        "plugins/afcot_benchmarks/af_eval.py",
        """item.id.rsplit("/", 1)[1]""",
        """item.id.split("/", 1)[1]""",
        [BR + "test_af_eval_export_keeps_the_official_file_with_only_the_answered_entries",
         BR + "test_af_eval_predictions_read_back_export_the_same_official_file"],
    ),
    (
        "20.b5: an MMAR category list of several layers read as its first layer",
        "plugins/afcot_benchmarks/mmar.py",
        """if isinstance(value, list) and len(value) == 1:""",
        """if isinstance(value, list) and value:""",
        [BR + "test_an_mmar_category_that_is_not_one_layer_is_refused_naming_the_item"],
    ),
    (
        "20.b6: AF-Reasoning-Eval's text-only diagnostic judging the answer with its option letter left in",
        "plugins/afcot_benchmarks/af_eval.py",
        """remainder = rest if index is not None else text""",
        """remainder = text""",
        [BR + "test_af_eval_a_letter_decides_and_the_text_after_it_is_judged_alone"],
    ),
    (
        "20.b7: afcot bench score ignoring --skip-missing",
        "plugins/afcot_benchmarks/cli.py",
        """skip_missing=args.skip_missing)""",
        """skip_missing=False)""",
        [BS + "test_bench_score_skip_missing_leaves_items_out_and_writes_readable_json_in_new_folders"],
    ),
    (
        "20.b8: a predictions file cut before its last newline not mended on resume",
        "plugins/afcot_benchmarks/stage.py",
        """if len(good) != len(lines) or (lines and not self.predictions_path.read_bytes().endswith(b"\\n")):""",
        """if len(good) != len(lines):""",
        [BS + "test_a_predictions_file_cut_before_its_last_newline_is_resumed_and_mended"],
    ),
    (
        "20.b9: going back to an earlier checkpoint asking every item again (its kept results not resumed)",
        "plugins/afcot_benchmarks/stage.py",
        """                if back.is_dir():""",
        """                if False:""",
        [BS + "test_going_back_to_an_earlier_checkpoint_resumes_its_results_and_keeps_the_other_aside"],
    ),
    (
        "20.b10: an earlier checkpoint's results kept under 8 digest characters, not 12",
        "plugins/afcot_benchmarks/stage.py",
        """(str(checkpoint or "unknown")[:12] or "unknown")""",
        """(str(checkpoint or "unknown")[:8] or "unknown")""",
        [BS + "test_a_model_folder_without_a_marker_is_keyed_by_its_files"],
    ),
    (
        "20.b11: the official prediction file holding raw outputs and final answers the wrong way round",
        "plugins/afcot_benchmarks/stage.py",
        """exported = outputs if bench.extract_on_score else answers""",
        """exported = answers if bench.extract_on_score else outputs""",
        [BS + "test_items_without_audio_count_as_wrong_and_the_official_file_holds_final_answers",
         BS + "test_every_item_is_asked_once_judged_and_recorded_then_resumed"],
    ),
    (
        "20.r1: the loss curve drawn upside down (the highest loss at the bottom)",
        "plugins/afcot_report/page.py",
        """        return pad_t + (hi - value) / (hi - lo) * (height - pad_t - pad_b)""",
        """        return pad_t + (value - lo) / (hi - lo) * (height - pad_t - pad_b)""",
        [RP + "test_the_highest_loss_is_at_the_top_of_the_loss_axis_and_the_lowest_on_the_step_axis"],
    ),
    (
        "20.r2: the page showing one rejected sample more than asked",
        "plugins/afcot_report/collect.py",
        """            if len(rejected) >= count:""",
        """            if len(rejected) > count:""",
        [RP + "test_the_first_rejected_or_failed_records_are_read_across_the_rejects_files"],
    ),
    (
        "20.r3: a flat loss curve dividing by zero",
        "plugins/afcot_report/page.py",
        """    hi = hi if hi > lo else lo + 1.0""",
        """    hi = hi if hi >= lo else lo + 1.0""",
        [RP + "test_a_flat_curve_is_a_level_line_on_the_step_axis_under_a_loss_axis_one_unit_tall"],
    ),
    (
        "20.r4: a resumed run's rewritten step keeping its first loss",
        "plugins/afcot_report/collect.py",
        """                by_step[int(row["step"])] = float(row["loss"])""",
        """                by_step.setdefault(int(row["step"]), float(row["loss"]))""",
        [RP + "test_losses_come_from_the_metrics_file_the_last_value_of_a_step_winning"],
    ),
    (
        "20.s1: a record whose item is not an object read by the statistics (a traceback, not the file named)",
        "afcot_core/stats.py",
        "if not isinstance(value, kind) or (key ==",
        "if False and (key ==",
        ["tests/test_stats.py::test_a_record_whose_parts_have_the_wrong_shape_is_named_with_the_part"],
    ),
    (
        "20.r5: the question prior taking the least frequent training answer instead of the most frequent",
        "plugins/afcot_report/compare.py",
        """if n == max(seen.values())]""",
        """if n == min(seen.values())]""",
        [RCM + "test_the_question_prior_is_the_score_of_the_most_frequent_training_answer",
         RCM + "test_a_run_compares_end_to_end_from_its_lock_shards_metrics_and_reports"],
    ),
    (
        "20.r6: the audit report swapping precision and recall",
        "plugins/afcot_report/audit.py",
        """f"precision {_pct(result.precision)}, recall {_pct(result.recall)}\"""",
        """f"precision {_pct(result.recall)}, recall {_pct(result.precision)}\"""",
        [RCM + "test_the_audit_report_gives_rate_interval_and_the_checks_agreement"],
    ),
    (
        "20.b12: a benchmark item asked without its audio",
        "plugins/afcot_benchmarks/stage.py",
        """reply = await self.model.ask(prompt, item.audio)""",
        """reply = await self.model.ask(prompt, None)""",
        [BS + "test_each_item_is_asked_with_its_own_audio"],
    ),
    (
        "20.g1: a core module left out of every mutation group",
        "pyproject.toml",
        """"afcot_core/stages/__init__.py", "afcot_core/streams.py",""",
        """"afcot_core/stages/__init__.py",""",
        [MG + "test_every_core_module_is_in_a_group"],
    ),
    (
        "20.e1: a duration is asked against 2 s even when it lies within 0.35 s of it (margin 0.3)",
        "plugins/afcot_embedded/world.py",
        """edge = 2.0 if abs(float(value) - 2.0) > 0.35 else""",
        """edge = 2.0 if abs(float(value) - 2.0) > 0.3 else""",
        [EW + "test_a_duration_is_asked_against_the_edge_it_is_clearly_away_from"],
    ),
    (
        "20.e2: a negated clause may keep the true value",
        "plugins/afcot_embedded/world.py",
        """others = [v for v in VALUES[clause.prop] if v != clause.value]""",
        """others = list(VALUES[clause.prop])""",
        [EW + "test_a_negated_clause_is_false_where_the_true_one_holds"],
    ),
    (
        "20.e3: a 'no' question always falsifies its first clause",
        "plugins/afcot_embedded/world.py",
        """k = int(rng.integers(len(clauses)))""",
        """k = 0""",
        [EW + "test_a_yes_no_question_asks_one_to_three_true_clauses_and_a_no_falsifies_exactly_one"],
    ),
    (
        "20.e4: the cousins' pool of close negatives holds the label's own family",
        "plugins/afcot_embedded/world.py",
        """c.grandparent == info.grandparent and c.parent != info.parent],""",
        """c.grandparent == info.grandparent and c.name != label],""",
        [EW + "test_close_negatives_take_the_sibling_then_cousins_then_the_rest"],
    ),
    (
        "20.e5: the value named last in a text is read, not the first",
        "plugins/afcot_embedded/grammar.py",
        """return min(hits)[1] if hits else None""",
        """return max(hits)[1] if hits else None""",
        [EW + "test_the_value_named_first_in_the_text_wins"],
    ),
    (
        "20.e6: top_p measures the mass before top_k's cut, not the mass top_k kept",
        "plugins/afcot_embedded/sampling.py",
        """keep = int(np.searchsorted(np.cumsum(probs / probs.sum()), sampling.top_p) + 1)""",
        """keep = int(np.searchsorted(np.cumsum(probs), sampling.top_p) + 1)""",
        [EW + "test_top_k_and_top_p_cut_the_tail"],
    ),
    (
        "20.e7: a classification_fraction above 1 is accepted",
        "plugins/afcot_embedded/source.py",
        """if not 0.0 <= self.classification_fraction <= 1.0:""",
        """if not 0.0 <= self.classification_fraction:""",
        [EW + "test_the_source_config_has_its_documented_defaults_and_bounds"],
    ),
    (
        "20.e8: a steady pitch or a held level gets a change-over-time MCQ (nine options)",
        "plugins/afcot_embedded/world.py",
        """all(truth.get(k) in VALUES[k][:2] for k in p)""",
        """all(truth.get(k) in VALUES[k] for k in p)""",
        [EW + "test_only_a_clip_changing_in_both_ways_gets_an_mcq"],
    ),
    (
        "20.e9: a clip of one event asked the false 'more than 1 separate events'",
        "plugins/afcot_embedded/world.py",
        """if rng.random() < 0.5 and value > 1:""",
        """if rng.random() < 0.5:""",
        [EW + "test_an_event_count_is_asked_two_to_four_events_away_on_either_side"],
    ),
    (
        "20.e10: 'the pitch stays steady' not read back as a clause",
        "plugins/afcot_embedded/grammar.py",
        """pitch (is |go(es)? |stays )?""",
        """pitch (is |go(es)? )?""",
        [EW + "test_every_statement_an_option_can_make_reads_back_and_holds_for_its_own_value_only"],
    ),
    (
        "20.l1: HF_HOME wins over HF_HUB_CACHE",
        "afcot_core/weights.py",
        """hub or os.path.join(home, "hub"))""",
        """env.get("HF_HOME") and os.path.join(home, "hub") or hub or os.path.join(home, "hub"))""",
        [LI + "test_hf_hub_cache_names_the_cache_before_hf_home"],
    ),
    (
        "20.l2: the oldest snapshot in the cache is taken",
        "afcot_core/weights.py",
        """    return found[-1].parent if found else None""",
        """    return found[0].parent if found else None""",
        [LI + "test_the_snapshot_whose_config_is_newest_wins_and_one_without_a_config_is_skipped"],
    ),
    (
        "20.l3: a bare name (no org/) is looked up in the HF cache",
        "afcot_core/weights.py",
        """    if "/" not in model or model.startswith((".", "/", "~")):""",
        """    if model.startswith((".", "/", "~")):""",
        [LI + "test_only_an_org_slash_name_is_looked_up_in_the_cache"],
    ),
    (
        "20.l4: a file's format keeps its suffix's case (clip.WAV is 'WAV')",
        "afcot_core/audio.py",
        """        return AudioRef(path=str(p), format=p.suffix.lstrip(".").lower() or "wav",""",
        """        return AudioRef(path=str(p), format=p.suffix.lstrip(".") or "wav",""",
        [LI + "test_a_readable_file_s_reference_carries_its_format_rate_and_duration"],
    ),
    (
        "20.l5: a gone stream's fd is left on the broken pipe, not pointed at /dev/null",
        "afcot_core/streams.py",
        """                os.dup2(devnull.fileno(), target)""",
        """                devnull.fileno()""",
        [LI + "test_a_write_to_a_pipe_whose_reader_left_is_dropped_and_the_fd_now_points_at_dev_null"],
    ),
    (
        "20.l6: a bad JSON entry is numbered from 1",
        "afcot_core/files.py",
        """    for i, rec in enumerate(doc):""",
        """    for i, rec in enumerate(doc, 1):""",
        [LI + "test_json_objects_accepts_a_list_of_objects_and_names_what_is_wrong_otherwise"],
    ),
    (
        "20.l7: a teacher sampler called synchronously drops exclude",
        "afcot_core/negatives.py",
        """            coro = self.asample(answer, k, exclude=exclude, question=question, seed=seed, rng=rng)""",
        """            coro = self.asample(answer, k, question=question, seed=seed, rng=rng)""",
        [LI + "test_a_teacher_sampler_can_be_called_outside_an_event_loop_with_every_argument_passed_on"],
    ),
    (
        "20.l8: a wave with NaN samples is not refused",
        "afcot_core/audio.py",
        """    if not np.all(np.isfinite(mono)):""",
        """    if np.all(np.isnan(mono)):""",
        [LI + "test_audio_that_cannot_be_used_is_an_audio_error_saying_why"],
    ),
    (
        "20.l9: the hub cache under XDG_CACHE_HOME not looked for",
        "afcot_core/weights.py",
        """os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")""",
        """os.path.join("~/.cache", "huggingface")""",
        [LI + "test_the_cache_is_found_where_hf_download_puts_it"],
    ),
    (
        "20.l10: /dev/null opened for a gone stream left open when its descriptor is unusable",
        "afcot_core/streams.py",
        """            target = self._stream.fileno()
            with open(os.devnull, "wb") as devnull:  # closed whether or not dup2 takes the descriptor
                os.dup2(devnull.fileno(), target)""",
        """            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)""",
        [LI + "test_a_stream_without_a_usable_file_descriptor_is_dropped_quietly"],
    ),
    (
        "20.k1: built-in plugins no longer load before third-party ones found earlier",
        "afcot_core/plugins.py",
        """    return sorted(chosen, key=lambda ep: not is_builtin(ep))""",
        """    return chosen""",
        [KP + "test_built_in_plugins_load_first_whatever_order_they_are_found_in"],
    ),
    (
        "20.k2: a plugin skipped for a misspelled hook stays registered, so its other hooks still register",
        "afcot_core/plugins.py",
        """            if pm.has_plugin(name):""",
        """            if pm.has_plugin(None):""",
        [KP + "test_a_plugin_with_a_misspelled_hook_is_skipped_whole_and_the_next_still_loads"],
    ),
    (
        "20.k3: a registration loses the prompts it was given",
        "afcot_core/plugins.py",
        """preflight, prompts or {}, plan))""",
        """preflight, prompts and {}, plan))""",
        [KP + "test_a_registration_records_every_field_it_was_given_and_the_defaults_of_the_rest"],
    ),
    (
        "20.k4: a built-in recipe name holding a path separator reaches a file (sub/../alpha)",
        "afcot_core/catalog.py",
        """    if "/" in name or "\\\\" in name or not found.is_file():""",
        """    if not found.is_file():""",
        [KP + "test_a_built_in_recipe_name_holding_a_path_separator_is_refused_even_when_the_file_exists"],
    ),
    (
        "20.k5: recipe validate no longer names a recipe's variants",
        "afcot_core/cli.py",
        """if "variants" in recipe.data else """"",
        """if "variants" in recipe.data and False else """"",
        [KP + "test_recipe_validate_names_the_stages_the_components_and_the_variants"],
    ),
    (
        "20.k6: a library's logging.ERROR record becomes a run warning, not an error",
        "afcot_core/log.py",
        """if record.levelno >= logging.ERROR else""",
        """if record.levelno > logging.ERROR else""",
        [KP + "test_library_warnings_through_python_logging_become_run_events_at_their_level"],
    ),
    (
        "20.k7: a console whose reader left is written to again for every event",
        "afcot_core/log.py",
        """            _ConsoleLogger.gone = True""",
        """            _ConsoleLogger.gone = False""",
        [KP + "test_a_console_whose_reader_left_is_given_up_while_the_file_gets_every_event"],
    ),
    (
        "20.k8: shards finished by an earlier run no longer move the bar",
        "afcot_core/progress.py",
        """        self._refresh(done.items)""",
        """        self._refresh(0)""",
        [KP + "test_a_bar_on_a_stream_that_is_not_a_terminal_prints_one_plain_line_at_the_end"],
    ),
    (
        "20.t1: a loudness of exactly -21 dB is called loud instead of moderate",
        "plugins/afcot_embedded/listen.py",
        """return "loud" if rms_db > -21 else""",
        """return "loud" if rms_db >= -21 else""",
        [ET + "test_the_loudness_level_has_its_edges_at_minus_21_and_minus_31_db"],
    ),
    (
        "20.t2: onsets only four frames apart are both counted",
        "plugins/afcot_embedded/listen.py",
        """< 9 or i - last < 5:""",
        """< 9 or i - last < 4:""",
        [ET + "test_onsets_need_five_frames_between_them_and_a_neighbour_on_each_side"],
    ),
    (
        "20.t3: the ALM classifies by the count of misfits, not their share of the class profile",
        "plugins/afcot_embedded/alm.py",
        """scores = [1 - len(mismatches(info, m)) / len(info.acoustics) for info in infos]""",
        """scores = [-len(mismatches(info, m)) for info in infos]""",
        [ET + "test_the_alm_classifies_by_the_label_whose_profile_fits_best"],
    ),
    (
        "20.t4: the ALM answers yes when any clause holds",
        "plugins/afcot_embedded/alm.py",
        """if clauses and all(_holds(c, m) for c in clauses) else""",
        """if clauses and any(_holds(c, m) for c in clauses) else""",
        [ET + "test_the_alm_answers_a_yes_no_question_yes_only_when_every_clause_holds"],
    ),
    (
        "20.t5: the ALM's measurement cache drops a clip already at 512 entries",
        "plugins/afcot_embedded/alm.py",
        """if len(self._measured) > 512:""",
        """if len(self._measured) >= 512:""",
        [ET + "test_the_alm_measures_each_clip_once_and_forgets_the_oldest_beyond_512"],
    ),
    (
        "20.t6: the scripted LLM answers no while another clause is still open",
        "plugins/afcot_embedded/llm.py",
        'return "no" if None not in truths else "unsure"',
        'return "no"',
        [ET + "test_the_llm_derives_yes_no_only_when_every_clause_is_known_or_one_is_false_and_none_unknown"],
    ),
    (
        "20.t7: planted unsupported/asserted reasoning keeps the decisive statements",
        "plugins/afcot_embedded/llm.py",
        """beside = [a for a in useful if not needed & set(_about(a))]""",
        """beside = list(useful)""",
        [ET + "test_planted_unsupported_and_asserted_reasoning_leave_out_the_decisive_statements"],
    ),
    (
        "20.t8: false reasoning is planted in the complement of its configured share",
        "plugins/afcot_embedded/llm.py",
        """return rng if rng.random() < share else None""",
        """return rng if rng.random() > share else None""",
        [ET + "test_the_llm_plants_false_reasoning_in_about_its_configured_share_of_requests"],
    ),
]

def main(only: list[str]) -> int:
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "afcot"
        skip = shutil.ignore_patterns(".git", ".venv", "runs", "mutants", "__pycache__", ".nox")
        shutil.copytree(ROOT, copy, ignore=skip)
        env = {**os.environ, "PYTHONPATH": f"{copy}:{copy / 'plugins'}", "HF_HUB_OFFLINE": "1"}
        chosen = [p for p in PLANTS if not only or any(o in p[0] for o in only)]
        tests = sorted({t for p in chosen for t in p[4]})
        baseline = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=copy,
                                  env=env, capture_output=True, text=True)
        if baseline.returncode != 0:  # a test that fails anyway proves nothing
            print(baseline.stdout[-2000:])
            print("the tests fail without any planted bug; fix that first")
            return 1
        for name, path, old, new, tests in PLANTS:
            if only and not any(o in name for o in only):
                continue
            target = copy / path
            original = target.read_text()
            if original.count(old) != 1:
                print(f"{'NOT PLANTED':<12} {name}: the text to replace is not in {path}")
                missed += 1
                continue
            target.write_text(original.replace(old, new))
            try:
                result = subprocess.run(
                    [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                    cwd=copy,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                caught = result.returncode == 1
            except subprocess.TimeoutExpired:
                caught = True
            finally:
                target.write_text(original)
            missed += not caught
            print(f"{'caught' if caught else 'NOT CAUGHT':<12} {name}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
