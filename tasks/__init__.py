"""unlearnbench.tasks: task families (real benchmarks and embedded worlds)."""

from unlearnbench.tasks import tofu, tofu_ingest, tofu_protocol  # noqa: F401
from unlearnbench.tasks import mini_tofu  # noqa: F401,E402
from unlearnbench.tasks import muse, wmdp, mini_muse, mini_wmdp  # noqa: F401,E402
from unlearnbench.tasks import diffusion_protocol, i2p, mini_canvas, unlearncanvas  # noqa: F401,E402
from unlearnbench.tasks import classifier_protocol, digits, cifar  # noqa: F401,E402
