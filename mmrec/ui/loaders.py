"""What every page shares, under one name: ``from mmrec.ui import loaders as L`` then ``L.x``.

The code lives in one module per responsibility; this module only re-exports it, so pages keep
one import:

- ``mmrec.ui.session``: page files, session-state keys, the cached service (``get_service``,
  ``service``), the data folders a session may use, the session's ``View``, ``map_table``;
- ``mmrec.ui.callbacks``: the grid on screen, ratings, dismissals, weights, the user switch;
- ``mmrec.ui.sidebar``: ``render_sidebar``;
- ``mmrec.ui.status``: folder validation, first-build progress, "not ready" / "pick a user";
- ``mmrec.ui.reports``: report tables, charts and verdicts (Results page);
- ``mmrec.ui.media_widgets``: poster thumbnails and trailer excerpts;
- ``mmrec.ui.safetext``: catalog text made safe for Markdown and hover labels.
"""

# ruff: noqa: F401, I001 (re-exports, packed several to a line: the list of what pages use)

from __future__ import annotations

# fmt: off
from mmrec.rebuild import checkpoint_version
from mmrec.service import ServiceError
from mmrec.ui.callbacks import (
    apply_weights, arrivals, change_sentence, choose_user, create_user, current_picks,
    follow_why, forget_user_view, grid_key, on_dismiss, on_grid_event, rate, reset_view,
    revert_weights,
)
from mmrec.ui.identity import K_USER, NEW_USER
from mmrec.ui.media_widgets import (
    POSTER_THUMB_PIXELS, poster_alt, poster_thumbnail, show_poster, show_trailer,
    trailer_excerpt,
)
from mmrec.ui.reports import (
    REPORT_SPECS, find_reports, metric_frame, report_chart, report_data_dir, report_frame,
    report_for_folder, report_kind, report_markdown, report_verdict, same_folder,
)
from mmrec.ui.safetext import hover, md, short, title_line
from mmrec.ui.session import (
    DATA_PAGE, EXPLORE_PAGE, HOME_PAGE, K_APPLIED, K_CHANGE, K_CKPT_DIR, K_COUNT_SLOT,
    K_DATA_DIR, K_EPS, K_EXCLUDE, K_GOTO_WHY, K_GRID, K_HIGH, K_INCLUDE, K_MIN_AVG, K_RATINGS_LOG,
    K_VERSION, K_W, K_WHY, K_YEARS, LEARNING_PAGE, PAGES_DIR, RESULTS_PAGE, WHY_PAGE, View,
    allowed_data_dir, base_config, current_config, current_paths, data_choices, get_service,
    map_table, reload_service, service, show_rating_count, user_rating_count, users, view,
    year_bounds,
)
from mmrec.ui.sidebar import render_sidebar
from mmrec.ui.status import need_user, not_ready, setup_progress, validate_folder
# fmt: on
