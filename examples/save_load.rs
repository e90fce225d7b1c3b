//! Save a level to JSON and load it into a new manager: the stores of two
//! types, handles inside the values (a unit's target, a squad's members)
//! and the world's own list of squads, all still naming the right values
//! after the load — the removed unit's handle stays removed.
//!
//! `cargo run --release --features serde --example save_load`

use memory_mgr::{Error, Handle, MemoryManager};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Unit {
    name: String,
    hp: i32,
    target: Option<Handle<Unit>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Squad {
    members: Vec<Handle<Unit>>,
}

/// The level as a file holds it.
#[derive(Serialize, Deserialize)]
struct Saved {
    units: serde_json::Value,
    squads: serde_json::Value,
    /// The world's own handles.
    roots: serde_json::Value,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A level.
    let mut mm = MemoryManager::builder().name("level 1").build()?;
    let boss = mm.insert(Unit {
        name: "boss".into(),
        hp: 90,
        target: None,
    });
    let mut squads = Vec::new();
    for s in 0..3 {
        let members = (0..4)
            .map(|i| {
                mm.insert(Unit {
                    name: format!("guard {s}.{i}"),
                    hp: 10 + i,
                    target: Some(boss),
                })
            })
            .collect::<Vec<_>>();
        squads.push(mm.insert(Squad { members }));
    }
    // One guard falls before the save: its handle is stale, and stays so.
    let g = mm.get(squads[1])?.members[2];
    mm.remove(g)?;
    mm.get_mut(squads[1])?.members.remove(2);
    let fallen = Some(g);

    // Save.
    let saved = Saved {
        units: mm.save_store::<Unit, _>(serde_json::value::Serializer)?,
        squads: mm.save_store::<Squad, _>(serde_json::value::Serializer)?,
        roots: serde_json::to_value((&squads, boss, fallen))?,
    };
    let file = serde_json::to_string(&saved)?;
    println!(
        "saved {} units, {} squads: {} bytes of JSON",
        mm.len::<Unit>(),
        mm.len::<Squad>(),
        file.len()
    );
    drop(mm);

    // Load into a new manager.
    let loaded: Saved = serde_json::from_str(&file)?;
    let mm = MemoryManager::builder().name("level 1, loaded").build()?;
    mm.load_store::<Squad, _>(&loaded.squads)?; // squads first: any order works
    mm.load_store::<Unit, _>(&loaded.units)?;
    type Roots = (Vec<Handle<Squad>>, Handle<Unit>, Option<Handle<Unit>>);
    let (squads, boss, fallen) = mm.load_with(|| serde_json::from_value::<Roots>(loaded.roots))?;

    for (i, &s) in squads.iter().enumerate() {
        let names: Vec<&str> = mm
            .get(s)?
            .members
            .iter()
            .map(|&u| mm.get(u).map(|u| u.name.as_str()))
            .collect::<Result<_, Error>>()?;
        println!("squad {i}: {}", names.join(", "));
        for &u in &mm.get(s)?.members {
            assert_eq!(mm.get(u)?.target, Some(boss), "a handle inside a value");
        }
    }
    assert_eq!(mm.get(boss)?.name, "boss");
    assert_eq!(mm.get(fallen.unwrap()).err(), Some(Error::Removed));
    println!(
        "boss: {} hp; the fallen guard: {:?}",
        mm.get(boss)?.hp,
        mm.get(fallen.unwrap()).err()
    );
    println!("{}", mm.stats());
    Ok(())
}
