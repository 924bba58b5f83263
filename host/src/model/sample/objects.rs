//! The made-up objects of a sample payload, in Rossum's shapes: an annotation with its
//! content tree, its document, an upload with its files and documents, an email with its
//! files, headers and body.

use serde_json::{json, Value};

use super::{SampleRequest, SAMPLE_ID};
use crate::model::object_url;

/// The id of the sample's document id datapoint: the one an `updated` event changed.
pub(super) const DOCUMENT_ID_DATAPOINT: u64 = 1002;

/// What the made-up objects share.
pub(super) struct Sample<'a> {
    pub(super) base_url: &'a str,
    pub(super) queue: String,
    pub(super) request: &'a SampleRequest,
    pub(super) now: String,
}

impl Sample<'_> {
    fn url(&self, collection: &str, id: u64) -> String {
        object_url(self.base_url, collection, id)
    }

    fn annotation_url(&self) -> String {
        self.url("annotations", self.request.annotation_id)
    }

    fn document_url(&self) -> String {
        self.url("documents", self.request.annotation_id)
    }

    /// The annotation: its `content` a URL, or (`with_content`, for `annotation_content`)
    /// its whole data tree; `previous_status` for `annotation_status`.
    pub(super) fn annotation(&self, with_content: bool) -> Value {
        let url = self.annotation_url();
        let mut annotation = json!({
            "id": self.request.annotation_id,
            "url": url,
            "status": self.request.status,
            "document": self.document_url(),
            "queue": self.queue,
            "schema": self.url("schemas", SAMPLE_ID),
            "relations": [],
            "pages": [self.url("pages", self.request.annotation_id)],
            "creator": self.url("users", SAMPLE_ID),
            "modifier": null,
            "created_at": self.now,
            "modified_at": self.now,
            "assigned_at": null,
            "confirmed_at": null,
            "exported_at": null,
            "arrived_at": self.now,
            "messages": [],
            "metadata": {},
            "automated": false,
            "time_spent": 0.0,
            "email": null,
            "related_emails": [],
            "automation_blocker": null,
            "content": format!("{url}/content"),
        });
        if let Some(fields) = annotation.as_object_mut() {
            if with_content {
                fields.insert("content".into(), content_tree(&url));
            } else {
                fields.insert(
                    "previous_status".into(),
                    self.request.previous_status.clone().into(),
                );
            }
        }
        annotation
    }

    /// The annotation's document (without its `annotations`, as Rossum sends it).
    pub(super) fn document(&self) -> Value {
        let url = self.document_url();
        json!({
            "id": self.request.annotation_id,
            "url": url,
            "mime_type": "application/pdf",
            "original_file_name": "invoice-2026-0042.pdf",
            "arrived_at": self.now,
            "created_at": self.now,
            "creator": self.url("users", SAMPLE_ID),
            "content": format!("{url}/content"),
            "parent": null,
            "email": null,
            "attachment_status": null,
            "metadata": {},
        })
    }

    /// `upload.created`: the upload, its files and their documents.
    pub(super) fn upload(&self) -> Value {
        let document = self.document_url();
        json!({
            "files": [{
                "document": document,
                "prevent_importing": false,
                "values": [],
                "queue": self.queue,
                "annotation": self.annotation_url(),
            }],
            "documents": [self.document()],
            "metadata": {},
            "email": null,
            "upload": {
                "id": self.request.upload_id,
                "url": self.url("uploads", self.request.upload_id),
                "queue": self.queue,
                "creator": self.url("users", SAMPLE_ID),
                "created_at": self.now,
                "email": null,
                "documents": [document],
                "additional_documents": [],
                "annotations": [self.annotation_url()],
            },
        })
    }

    /// `email.received`: the email's attachment, headers and body, on its inbox's queue.
    pub(super) fn email(&self) -> Value {
        json!({
            "files": [{
                "id": "1",
                "filename": "invoice-2026-0042.pdf",
                "mime_type": "application/pdf",
                "n_pages": 1,
                "height_px": 3508.0,
                "width_px": 2480.0,
                "document": self.document_url(),
            }],
            "headers": {
                "from": "Supplier Billing <billing@supplier.example>",
                "to": "invoices@inbox.example",
                "reply-to": "billing@supplier.example",
                "subject": "Invoice INV-2026-0042",
                "message-id": "<invoice-2026-0042@supplier.example>",
                "date": "Mon, 02 Nov 2026 09:30:00 +0000",
            },
            "body": {
                "body_text_plain": "Please find attached our invoice INV-2026-0042.",
                "body_text_html": "<p>Please find attached our invoice INV-2026-0042.</p>",
            },
            "email": self.url("emails", self.request.email_id),
            "queue": self.queue,
        })
    }
}

/// One datapoint of the sample's content tree, with Rossum's extraction fields.
fn datapoint(
    annotation_url: &str,
    id: u64,
    schema_id: &str,
    value: &str,
    normalized: &str,
) -> Value {
    json!({
        "id": id,
        "url": format!("{annotation_url}/content/{id}"),
        "category": "datapoint",
        "schema_id": schema_id,
        "type": "string",
        "content": {
            "value": value,
            "normalized_value": normalized,
            "page": 1,
            "position": [120.0, 410.0, 380.0, 436.0],
            "rir_text": value,
            "rir_position": [120.0, 410.0, 380.0, 436.0],
            "rir_confidence": 0.98,
            "connector_position": null,
            "connector_text": null,
        },
        "validation_sources": ["score"],
        "time_spent": 0.0,
        "hidden": false,
    })
}

/// A node holding `children` (a section, a multivalue, a tuple).
fn node(
    annotation_url: &str,
    id: u64,
    category: &str,
    schema_id: &str,
    children: &[Value],
) -> Value {
    json!({
        "id": id,
        "url": format!("{annotation_url}/content/{id}"),
        "category": category,
        "schema_id": schema_id,
        "children": children,
    })
}

/// An invoice's content tree: header fields, amounts and one line item.
fn content_tree(annotation_url: &str) -> Value {
    let point = |id: u64, schema_id: &str, value: &str, normalized: &str| {
        datapoint(annotation_url, id, schema_id, value, normalized)
    };
    let header = node(
        annotation_url,
        1001,
        "section",
        "basic_info_section",
        &[
            point(
                DOCUMENT_ID_DATAPOINT,
                "document_id",
                "INV-2026-0042",
                "INV-2026-0042",
            ),
            point(1003, "date_issue", "02.11.2026", "2026-11-02"),
            point(1004, "sender_name", "Supplier Ltd.", "Supplier Ltd."),
        ],
    );
    let amounts = node(
        annotation_url,
        1010,
        "section",
        "amounts_section",
        &[
            point(1011, "amount_total", "1 210,00", "1210.00"),
            point(1012, "currency", "EUR", "eur"),
        ],
    );
    let row = node(
        annotation_url,
        1022,
        "tuple",
        "line_item",
        &[
            point(
                1023,
                "item_description",
                "Consulting services",
                "Consulting services",
            ),
            point(1024, "item_amount_total", "1 000,00", "1000.00"),
        ],
    );
    let items = node(
        annotation_url,
        1020,
        "section",
        "line_items_section",
        &[node(
            annotation_url,
            1021,
            "multivalue",
            "line_items",
            &[row],
        )],
    );
    json!([header, amounts, items])
}
