"""unlearnbench.baselines."""
from unlearnbench.baselines import retrain, ft, ga_classifier, rl, l1_sparse, salun_classifier, ssd, scrub, iu  # noqa: F401,E402
from unlearnbench.baselines import ga, graddiff, npo, simnpo, idkpo, rmu  # noqa: F401,E402
from unlearnbench.baselines import esd, uce, rece, salun_diffusion, advunlearn  # noqa: F401,E402
from unlearnbench.baselines import wagle, soul  # noqa: F401,E402  (issue 8: robustness + WAGLE/SOUL)
from unlearnbench import attacks as _llm_attacks  # noqa: F401,E402  (registers relearn/quantize/prompt)
from unlearnbench.baselines import unlearndiffatk  # noqa: F401,E402
