"""The checks of examples/pypipe/scenarios, as a pytest suite: the pipeline in process,
its LLM API and executor on a loopback HTTP fixture."""

import pypipe

PLAN = {"subtasks": ["blade", "hilt"]}
CODE = {"code": "make_sword()"}
ACCEPT = {"score": 8.5, "needs_refinement": False, "issues": []}
SWORD = {"prompt": "Create a detailed medieval sword"}


def usual(fake, plan=PLAN, code=CODE, critic=ACCEPT):
    fake.reply("planner", plan)
    fake.reply("coder", code)
    fake.reply("critic", critic)


def test_happy_path(fake):
    usual(fake, plan={"subtasks": ["model the blade", "model the hilt", "apply materials"]})
    fake.env()
    out, code = pypipe.run(SWORD)
    assert code == 0 and out["status"] == "completed"
    assert out["refinement_iterations"] == 0
    assert out["critic"]["score"] >= 8
    assert "sword.blend" in out["execution"]["artifacts"]
    assert [fake.count(a) for a in ("planner", "coder", "critic")] == [1, 1, 1]
    assert fake.count("executor") == 1



def test_fenced_plan(fake):
    # flow/fenced_plan.toml: a planner reply in a Markdown code fence is read as its JSON.
    usual(fake)
    fake.reply("planner", '```\n{"subtasks":["model the blade","model the hilt","apply materials"]}\n```')
    fake.env()
    out, code = pypipe.run(SWORD)
    assert code == 0 and out["status"] == "completed"
    assert out["refinement_iterations"] == 0
    assert out["critic"]["score"] >= 8
    assert "sword.blend" in out["execution"]["artifacts"]
    assert [fake.count(a) for a in ("planner", "coder", "critic")] == [1, 1, 1]
    assert fake.count("executor") == 1

def test_subtasks_kept(fake):
    usual(fake, plan={"subtasks": ["shape", "emblem", "paint"]}, code={"code": "make_shield()"})
    fake.env()
    out, _ = pypipe.run({"prompt": "Create a shield"})
    assert out["status"] == "completed"
    assert out["subtasks"] == ["shape", "emblem", "paint"]
    assert out["code"] == "make_shield()"


def test_refinement_once(fake):
    usual(fake)
    fake.reply("critic", {"score": 5.0, "needs_refinement": True, "issues": ["Poor lighting"]}, {"score": 8.5, "needs_refinement": False})
    fake.env()
    out, _ = pypipe.run(SWORD)
    assert out["status"] == "completed" and out["refinement_iterations"] == 1
    assert out["critic"]["score"] == 8.5
    assert [fake.count(a) for a in ("planner", "coder", "critic", "executor")] == [1, 2, 2, 2]


def test_issues_reach_the_coder(fake):
    usual(fake)
    fake.reply("coder", CODE, {"code": "fixed_lighting()"})
    fake.reply("critic", {"score": 5.0, "needs_refinement": True, "issues": ["Poor lighting"]}, {"score": 9.0, "needs_refinement": False})
    fake.env()
    out, _ = pypipe.run(SWORD)
    assert out["status"] == "completed" and out["code"] == "fixed_lighting()"
    assert "Poor lighting" in fake.requests["coder"][1]["messages"][-1]["content"]
    assert fake.count("coder") == 2


def test_refinement_budget_spent(fake):
    usual(fake, critic={"score": 4.0, "needs_refinement": True, "issues": ["still dull"]})
    fake.env()
    out, _ = pypipe.run(SWORD)
    assert out["status"] == "completed" and out["refinement_iterations"] == 2
    assert [fake.count(a) for a in ("coder", "critic", "executor")] == [3, 3, 3]


def test_no_refinement_budget(fake):
    usual(fake, critic={"score": 4.0, "needs_refinement": True, "issues": ["dull"]})
    fake.env(PYPIPE_MAX_ITERATIONS=0)
    out, _ = pypipe.run(SWORD)
    assert out["status"] == "completed" and out["refinement_iterations"] == 0
    assert [fake.count(a) for a in ("coder", "critic")] == [1, 1]


def test_tokens_counted(fake):
    usual(fake)
    fake.env()
    out, _ = pypipe.run(SWORD)
    assert out["status"] == "completed" and out["usage"]["total_tokens"] > 0


def test_execution_failure_reviewed(fake):
    usual(fake)
    fake.executor = [{"success": False, "errors": ["NameError: bpy"]}]
    fake.env()
    out, _ = pypipe.run(SWORD)
    assert out["status"] == "completed" and out["execution"]["success"] is False
    assert fake.count("critic") == 1


def test_rate_limited_429(fake):
    usual(fake)
    fake.fail("planner", 429, 1, retry_after=1)
    fake.env()
    out, _ = pypipe.run(SWORD)
    assert out["status"] == "completed" and fake.count("planner") == 2


def test_server_errors_then_success(fake):
    usual(fake)
    fake.fail("coder", 500, 2)
    fake.env()
    out, _ = pypipe.run(SWORD)
    assert out["status"] == "completed" and fake.count("coder") == 3


def test_retries_exhausted(fake):
    usual(fake)
    fake.reply("planner", ("error", 503, "overloaded"))
    fake.env()
    out, code = pypipe.run(SWORD)
    assert code == 1 and out["status"] == "failed" and "planner" in out["error"]
    assert fake.count("planner") == 4 and fake.count("coder") == 0 and fake.count("executor") == 0


def test_non_retryable_error(fake):
    usual(fake)
    fake.reply("planner", ("error", 400, "bad request"))
    fake.env()
    out, code = pypipe.run(SWORD)
    assert code == 1 and out["status"] == "failed" and "400" in out["error"]
    assert fake.count("planner") == 1


def test_malformed_json_then_recovery(fake):
    usual(fake)
    fake.reply("planner", "Sure! Here is the plan: {subtasks: [shape, emblem", {"subtasks": ["shape", "emblem"]})
    fake.env()
    out, _ = pypipe.run(SWORD)
    assert out["status"] == "completed" and out["subtasks"] == ["shape", "emblem"]
    assert fake.count("planner") == 2


def test_malformed_json_twice(fake):
    usual(fake, code="I think the code should be...")
    fake.env()
    out, code = pypipe.run(SWORD)
    assert code == 1 and out["status"] == "failed" and "not JSON twice" in out["error"]
    assert fake.count("coder") == 2 and fake.count("executor") == 0


def test_critic_down_degraded(fake):
    usual(fake)
    fake.reply("critic", ("error", 503, "critic model unavailable"))
    fake.env()
    out, code = pypipe.run(SWORD)
    assert code == 0 and out["status"] == "degraded" and "critic" in out["degraded_reason"]
    assert fake.count("critic") == 4


def test_executor_unavailable_once(fake):
    usual(fake)
    fake.executor_failures = [(503,)]
    fake.env()
    out, _ = pypipe.run(SWORD)
    assert out["status"] == "completed" and fake.count("executor") == 2


def test_executor_down(fake):
    usual(fake)
    fake.executor_failures = [(502,)] * 10
    fake.env()
    out, code = pypipe.run(SWORD)
    assert code == 1 and out["status"] == "failed" and "executor" in out["error"]
    assert fake.count("executor") == 4 and fake.count("critic") == 0


def test_executor_timeout_once(fake):
    usual(fake, plan={"subtasks": ["lamp"]}, code={"code": "make_lamp()"}, critic={"score": 8.0, "needs_refinement": False})
    fake.executor = [{"success": True, "artifacts": ["lamp.blend"]}]
    fake.executor_failures = [("delay", 2)]
    fake.env(PYPIPE_TIMEOUT=0.3)
    out, _ = pypipe.run({"prompt": "Render a lamp"})
    assert out["status"] == "completed" and out["execution"]["artifacts"] == ["lamp.blend"]
    assert fake.count("executor") == 2


def test_llm_timeout_then_success(fake):
    usual(fake)
    fake.reply("coder", ("delay", 2, {"code": "late()"}), CODE)
    fake.env(PYPIPE_TIMEOUT=0.3)
    out, _ = pypipe.run(SWORD)
    assert out["status"] == "completed" and out["code"] == "make_sword()"
    assert fake.count("coder") == 2


def test_empty_prompt(fake):
    usual(fake)
    fake.env()
    out, code = pypipe.run({"prompt": ""})
    assert code == 2 and out["status"] == "failed" and "empty" in out["error"]
    assert fake.calls == {}


def test_blank_prompt(fake):
    usual(fake)
    fake.env()
    out, code = pypipe.run({"prompt": "   "})
    assert code == 2 and out["status"] == "failed"
    assert fake.calls == {}


def test_oversized_prompt(fake):
    usual(fake)
    fake.env(PYPIPE_MAX_PROMPT=10)
    out, code = pypipe.run(SWORD)
    assert code == 2 and out["status"] == "failed" and "longer than 10" in out["error"]
    assert fake.calls == {}


def test_no_subtasks(fake):
    usual(fake, plan={"subtasks": []})
    fake.env()
    out, code = pypipe.run(SWORD)
    assert code == 1 and out["status"] == "failed" and "no subtasks" in out["error"]
    assert fake.count("coder") == 0


def test_unicode_prompt(fake):
    usual(fake, plan={"subtasks": ["刀身", "柄"]})
    fake.env()
    out, _ = pypipe.run({"prompt": "日本刀を作ってください"})
    assert out["status"] == "completed" and out["subtasks"] == ["刀身", "柄"]
