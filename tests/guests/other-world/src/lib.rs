//! A well-formed component of another world (`greet` instead of `handle`): the host must
//! refuse it, naming the export it lacks.

// The generated export glue is unsafe by nature.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    inline: "
        package test:other;
        world other {
            export greet: func(name: string) -> string;
        }
    ",
});

struct Other;

impl Guest for Other {
    fn greet(name: String) -> String {
        format!("hi {name}")
    }
}

export!(Other);
