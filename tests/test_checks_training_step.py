"""check_training_step (notebook 03): the student's one training step, trained a few steps beside
minillm.train.train from the same weights. A right step passes, whichever of the equivalent ways it is written;
each usual mistake fails with the line that names it."""
import pytest
import torch

from minillm import checks

FIXED = ("after training with max_steps=6, learning_rate=0.01, warmup_steps=2, grad_clip=0.5, your model's weights "
         "differ from minillm.train.train's: largest difference ")


def step(model, optimizer, x, y, lr, grad_clip, *, set_lr="all", clip=True, clip_to=None, update=True, zero=True):
    """A training step as a student writes it; the keywords make it one of the usual mistakes."""
    groups = {"all": optimizer.param_groups, "first": optimizer.param_groups[:1], "none": []}[set_lr]
    for group in groups:
        group["lr"] = lr
    _, loss = model(x, y)
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_to or grad_clip)
    if update:
        optimizer.step()
    if zero:
        optimizer.zero_grad()
    return loss.item()


def step_by_hand(model, optimizer, x, y, lr, grad_clip):
    """Also right: zero first, the clip written out, the loss returned as a tensor."""
    optimizer.zero_grad(set_to_none=False)
    for group in optimizer.param_groups:
        group["lr"] = lr
    _, loss = model(x, y)
    loss.backward()
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters() if p.grad is not None))
    scale = min(1.0, grad_clip / (norm.item() + 1e-6))
    for p in model.parameters():
        if p.grad is not None:
            p.grad.mul_(scale)
    optimizer.step()
    return loss


def test_a_right_step_passes_and_leaves_the_callers_random_state(capsys):
    torch.manual_seed(7)
    want = torch.rand(3)
    torch.manual_seed(7)
    checks.check_training_step(step, n_random=5)
    assert torch.equal(torch.rand(3), want)                      # train() seeded torch inside the check, not here
    checks.check_training_step(step_by_hand, n_random=5)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(line.startswith("✓ training step: 6 short runs (1 fixed, the rest random) end with "
                                                 "the same weights and losses as minillm.train.train") for line in out)


@pytest.mark.parametrize("mistake, hint", [
    (dict(clip=False), "They match a step without gradient clipping: after loss.backward() and before "
                       "optimizer.step(), call torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)."),
    (dict(clip_to=1.0), "They match clipping the norm to 1.0: clip it to grad_clip, the argument."),
    (dict(set_lr="none"), "They match a step that never sets the learning rate (the optimizer keeps the one it was "
                          "built with): set group['lr'] = lr for every group in optimizer.param_groups before "
                          "optimizer.step()."),
    (dict(set_lr="first"), "They match setting the learning rate of the first parameter group only: the optimizer "
                           "has two (the weights with weight decay and those without); set it in every group of "
                           "optimizer.param_groups."),
    (dict(zero=False), "They match a step that never zeroes the gradients: backward() adds to the .grad already "
                       "there, so call optimizer.zero_grad() after optimizer.step()."),
    (dict(update=False), "The weights did not change at all: call optimizer.step() after loss.backward(), and zero "
                         "the gradients only after the step (zeroing them between the two throws them away)."),
])
def test_each_usual_mistake_is_named(mistake, hint):
    with pytest.raises(AssertionError) as e:
        checks.check_training_step(lambda *args: step(*args, **mistake))
    message = str(e.value)
    assert message.startswith(FIXED) and message.endswith(f"). {hint}"), message
    assert "\n" not in message


def test_an_unnamed_mistake_gets_the_order_of_a_step():
    def doubles_the_rate(model, optimizer, x, y, lr, grad_clip):
        for group in optimizer.param_groups:
            group["lr"] = lr * 2
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()
    with pytest.raises(AssertionError) as e:
        checks.check_training_step(doubles_the_rate)
    assert str(e.value).startswith(FIXED) and str(e.value).endswith(
        "). Each step: set every group's lr, loss from model(x, y), loss.backward(), "
        "clip_grad_norm_(model.parameters(), grad_clip), optimizer.step(), optimizer.zero_grad().")


def test_the_returned_loss_and_an_exception_are_explained():
    with pytest.raises(AssertionError, match=r"^the weights are right, but training_step returned None: return the "
                                             r"batch's loss as a number \(loss\.item\(\)\)$"):
        checks.check_training_step(lambda *args: step(*args) and None)
    with pytest.raises(AssertionError, match=r"^the weights are right, but at step 0 training_step returned [\d.]+ "
                                             r"where the batch's loss was [\d.]+: return loss\.item\(\) of this "
                                             r"step's forward pass$"):
        checks.check_training_step(lambda *args: step(*args) + 1.0)
    with pytest.raises(AssertionError, match=r"^training_step\(model, optimizer, x \(4, 8\), y \(4, 8\), lr=0\.005, "
                                             r"grad_clip=0\.5\) raised NotImplementedError: $"):
        checks.check_training_step(lambda *args: (_ for _ in ()).throw(NotImplementedError()))
