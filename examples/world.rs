//! An entity world over handles: `World` owns its manager and its handles
//! side by side, with no lifetime parameter, so `load_level` can build a
//! level and return it by value (with `PoolBox`es in the same struct this
//! fails to compile: E0505/E0515, see `docs/structuring.md`). A few frames
//! run with `get_mut` and `get_disjoint_mut`; entities are despawned with
//! `remove`; a level change resets the manager and loads the next level
//! into the same memory.
//!
//! Run it with `cargo run --release --example world`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use memory_mgr::{Error, Handle, MemoryManager};

/// Entity destructors run so far (on `remove`, `reset` and the manager's drop).
static DROPPED: AtomicUsize = AtomicUsize::new(0);

struct Entity {
    name: String,
    hp: i32,
    attack: i32,
}

impl Drop for Entity {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Copy)]
struct Transform {
    pos: [f32; 2],
    vel: [f32; 2],
}

/// A level: the manager owns every value, the rest is 16-byte handles.
struct World {
    mm: MemoryManager,
    player: Handle<Entity>,
    guards: Vec<Handle<Entity>>,
    transforms: HashMap<Handle<Entity>, Handle<Transform>>, // Handle is Eq + Hash
}

impl World {
    fn spawn(&mut self, name: String, hp: i32, pos: [f32; 2], vel: [f32; 2]) -> Handle<Entity> {
        let e = self.mm.insert(Entity {
            name,
            hp,
            attack: 7,
        });
        let t = self.mm.insert(Transform { pos, vel });
        self.transforms.insert(e, t);
        e
    }

    /// One frame: every transform moves, the player hits each guard within
    /// 5 units, guards at 0 hp are despawned. Returns (hits, despawned).
    fn frame(&mut self) -> Result<(usize, Vec<Handle<Entity>>), Error> {
        for t in self.transforms.values() {
            let t = self.mm.get_mut(*t)?;
            t.pos = [t.pos[0] + t.vel[0], t.pos[1] + t.vel[1]];
        }
        let at = self.mm.get(self.transforms[&self.player])?.pos;
        let (mut hits, mut dead) = (0, Vec::new());
        for &g in &self.guards {
            let p = self.mm.get(self.transforms[&g])?.pos;
            if (p[0] - at[0]).hypot(p[1] - at[1]) < 5.0 {
                let [player, guard] = self.mm.get_disjoint_mut([self.player, g])?;
                guard.hp -= player.attack;
                player.hp -= 1;
                hits += 1;
                if guard.hp <= 0 {
                    dead.push(g);
                }
            }
        }
        for &g in &dead {
            self.guards.retain(|&h| h != g);
            let t = self
                .transforms
                .remove(&g)
                .expect("every entity has a transform");
            self.mm.remove(t)?;
            let _gone: Entity = self.mm.remove(g)?; // moved out, dropped here
        }
        Ok((hits, dead))
    }
}

/// Builds a finished level in `mm` and returns it by value.
fn load_level(mm: MemoryManager, guards: usize) -> World {
    let player = mm.insert(Entity {
        name: "player".into(),
        hp: 1000,
        attack: 20,
    });
    let mut world = World {
        mm,
        player,
        guards: Vec::new(),
        transforms: HashMap::new(),
    };
    let t = world.mm.insert(Transform {
        pos: [0.0, 0.0],
        vel: [1.0, 0.5],
    });
    world.transforms.insert(player, t);
    for i in 0..guards {
        let pos = [(i * 7 % 60) as f32, (i * 13 % 30) as f32];
        let g = world.spawn(format!("guard {i}"), 30, pos, [0.0, 0.0]);
        world.guards.push(g);
    }
    world
}

fn main() -> Result<(), Error> {
    let mm = MemoryManager::builder()
        .name("level")
        .budget(1 << 20)
        .build()?;
    let mut world = load_level(mm, 500);
    println!(
        "level 1: {} guards; handles are {} bytes",
        world.guards.len(),
        size_of::<Handle<Entity>>()
    );

    let mut despawned = None;
    for frame in 1..=4 {
        let (hits, dead) = world.frame()?;
        let player = world.mm.get(world.player)?;
        println!(
            "  frame {frame}: {hits} hits, {} despawned, {} guards left, {} has {} hp",
            dead.len(),
            world.guards.len(),
            player.name,
            player.hp
        );
        despawned = despawned.or(dead.first().copied());
    }
    let gone = despawned.expect("the player reached some guards");
    println!(
        "  a despawned guard's handle: get -> {:?}",
        world.mm.get(gone).err()
    );
    assert_eq!(world.mm.get(gone).err(), Some(Error::Removed));
    let p = world.player;
    assert_eq!(
        world.mm.get_disjoint_mut([p, p]).err(),
        Some(Error::DuplicateHandle)
    );

    println!("\nend of level 1:\n{}", world.mm.stats());
    let reserved = world.mm.stats().reserved_bytes();
    let (old, dropped) = (world.guards[0], DROPPED.load(Ordering::Relaxed));
    let mut mm = world.mm; // the manager moves on; the old handles are left behind
    mm.reset(); // O(chunks): every value dropped, the chunks kept
    println!(
        "\nreset: {} entity destructors ran, {} live, {} bytes still reserved (were {reserved})",
        DROPPED.load(Ordering::Relaxed) - dropped,
        mm.stats().live(),
        mm.stats().reserved_bytes()
    );

    let world = load_level(mm, 400);
    println!(
        "level 2: {} guards; an old handle: get -> {:?}",
        world.guards.len(),
        world.mm.get(old).err()
    );
    assert_eq!(world.mm.get(old).err(), Some(Error::FreedByReset));
    let s = world.mm.stats();
    println!(
        "  reserved bytes after loading level 2: {} (level 1 used {reserved}: no new chunk)",
        s.reserved_bytes()
    );
    assert_eq!(s.reserved_bytes(), reserved);
    println!("\n{s}");
    Ok(())
}
