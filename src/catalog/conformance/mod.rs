//! The behaviour every catalog backend must show, as suites of cases that each take a fresh,
//! empty catalog. A backend's tests instantiate all of them with `catalog_conformance!`, so
//! SQLite and PostgreSQL are held to the same floors, stamps, conflicts, atomicity, grants,
//! signing records, space counts and garbage-collection verdicts.

pub(crate) mod auth;
pub(crate) mod channels;
pub(crate) mod gc;
pub(crate) mod packages;
pub(crate) mod retention;
pub(crate) mod scrub;
pub(crate) mod signing;
pub(crate) mod snapshots;
pub(crate) mod space;
pub(crate) mod takedowns;

use std::sync::Arc;

/// A fresh, empty catalog seen through each store trait it implements, and whatever must
/// outlive it (a temp dir, a test database).
pub(crate) struct Fixture {
    pub catalog: Arc<dyn crate::catalog::Catalog>,
    pub auth: Arc<dyn crate::auth::AuthStore>,
    pub signing: Arc<dyn crate::signing::SigningStore>,
    pub space: Arc<dyn crate::space::SpaceCatalog>,
    pub gc: Arc<dyn crate::gc::GcCatalog>,
    pub takedowns: Arc<dyn crate::takedown::TakedownStore>,
    pub scrub: Arc<dyn crate::scrub::ScrubCatalog>,
    pub packages: Arc<dyn crate::packages::store::PackageStore>,
    pub channels: Arc<dyn crate::rollout::ChannelStore>,
    pub retention: Arc<dyn crate::retention::RetentionStore>,
    pub _guard: Box<dyn Send + Sync>,
}

impl Fixture {
    /// One backend object behind every trait.
    pub fn of<C: crate::catalog::CatalogBackend>(catalog: Arc<C>, guard: impl Send + Sync + 'static) -> Self {
        Self {
            catalog: catalog.clone(),
            auth: catalog.clone(),
            signing: catalog.clone(),
            space: catalog.clone(),
            gc: catalog.clone(),
            takedowns: catalog.clone(),
            scrub: catalog.clone(),
            packages: catalog.clone(),
            channels: catalog.clone(),
            retention: catalog,
            _guard: Box::new(guard),
        }
    }
}

/// Expands to a module per suite with one `#[test]` per case, each on a fixture from `$new`
/// (an `Option<Fixture>`: `None` when the backend's server is not available, which its
/// factory reports).
macro_rules! catalog_conformance {
    ($new:expr) => {
        $crate::catalog::conformance::catalog_conformance!(@suite $new; snapshots;
            an_empty_catalog_knows_nothing,
            a_commit_is_visible_whole_with_its_stamp_and_counts,
            ids_resolve_to_the_latest_snapshot_at_or_before_them,
            a_stale_base_is_a_conflict_and_writes_nothing,
            a_failing_change_leaves_no_part_of_the_commit,
            a_large_commit_lands_whole_and_a_path_may_change_twice,
            ids_strictly_increase_within_a_second_and_above_the_seal,
            the_seal_never_moves_backwards,
            entries_children_and_by_digest_follow_the_snapshot,
            the_live_manifest_streams_in_path_order_for_its_base_only,
            snapshot_queries_filter_order_and_page,
            blobs_referenced_and_their_holders,
            concurrent_committers_all_land_with_increasing_ids,
        );
        $crate::catalog::conformance::catalog_conformance!(@suite $new; auth;
            tokens_are_kept_with_their_hash_scopes_and_times,
            a_revocation_keeps_its_first_time,
            privacy_creates_the_archive_and_is_read_back,
            upload_grants_count_from_their_latest_time,
            last_use_only_moves_forward,
        );
        $crate::catalog::conformance::catalog_conformance!(@suite $new; signing;
            a_key_is_set_replaced_and_removed,
            the_first_recorded_resigned_file_is_the_one_in_force,
        );
        $crate::catalog::conformance::catalog_conformance!(@suite $new; space;
            an_archive_counts_what_it_references_and_what_only_it_references,
        );
        $crate::catalog::conformance::catalog_conformance!(@suite $new; gc;
            only_unreferenced_blobs_become_candidates,
            due_candidates_come_in_order_after_the_cursor,
            a_collection_gives_each_candidate_its_verdict,
            a_commit_waits_while_a_collection_sets_bytes_aside,
        );
        $crate::catalog::conformance::catalog_conformance!(@suite $new; takedowns;
            a_path_takedown_hides_until_undone_and_is_logged,
            a_content_takedown_hides_everywhere_and_path_takedowns_come_first,
            a_purge_is_refused_while_the_bytes_are_served_elsewhere,
            contents_lists_what_a_path_ever_held,
        );
        $crate::catalog::conformance::catalog_conformance!(@suite $new; scrub;
            the_cursor_starts_at_zero_and_is_kept,
            selections_cut_the_digest_space_and_skip_what_was_verified,
            quarantine_records_the_damage_until_lifted,
        );
        $crate::catalog::conformance::catalog_conformance!(@suite $new; packages;
            indexing_goes_in_order_once_and_every_query_reads_it,
        );
        $crate::catalog::conformance::catalog_conformance!(@suite $new; channels;
            channels_are_saved_with_optimistic_versions_and_their_history,
            reports_are_counted_per_ring_as_they_come,
        );
        $crate::catalog::conformance::catalog_conformance!(@suite $new; retention;
            policies_are_set_read_and_removed,
            pins_come_from_operators_and_from_rollout_channels,
            a_deletion_keeps_what_must_stay_and_reclaims_what_only_it_held,
        );
    };
    (@suite $new:expr; $suite:ident; $($case:ident),* $(,)?) => {
        mod $suite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    let fixture: Option<$crate::catalog::conformance::Fixture> = $new;
                    if let Some(fixture) = fixture {
                        $crate::catalog::conformance::$suite::$case(&fixture);
                    }
                }
            )*
        }
    };
}
pub(crate) use catalog_conformance;
